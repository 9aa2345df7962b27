"""The service's settings and key handling (no services needed)."""
import pytest

from service.app import _binary, key_name, matching_key
from service.checker import NotServing, config_from_settings
from service.config import ServiceConfig, from_args
from transforms.records import ConfigError


def test_keys_come_from_the_environment_and_short_or_missing_keys_are_refused(monkeypatch):
    monkeypatch.setenv("NEAR_DUP_API_KEYS", "k" * 20 + ", " + "z" * 16 + ",")
    assert ServiceConfig().api_keys() == ("k" * 20, "z" * 16)
    monkeypatch.setenv("NEAR_DUP_API_KEYS", "short")
    with pytest.raises(ConfigError, match="shorter than 16"):
        ServiceConfig().api_keys()
    monkeypatch.delenv("NEAR_DUP_API_KEYS")
    with pytest.raises(ConfigError, match="no API keys"):
        ServiceConfig().api_keys()
    assert ServiceConfig(allow_no_keys=True).api_keys() == ()


def test_a_key_matches_only_itself():
    keys = ("a" * 20, "b" * 20)
    assert matching_key("b" * 20, keys) == "b" * 20
    assert matching_key("b" * 19, keys) is None and matching_key("", keys) is None and matching_key(None, keys) is None
    assert matching_key("a" * 20, ()) is None
    assert key_name("a" * 20) != key_name("b" * 20) and len(key_name("x")) == 8 and "a" * 20 not in key_name("a" * 20)


def test_options_and_their_environment_variables(monkeypatch):
    monkeypatch.setenv("NEAR_DUP_ES_INDEX", "from-env")
    monkeypatch.setenv("NEAR_DUP_PORT", "9001")
    cfg = from_args(["--es_url", "http://127.0.0.1:9201"])
    assert (cfg.es_index, cfg.port, cfg.es_url) == ("from-env", 9001, "http://127.0.0.1:9201")
    assert from_args(["--es_index", "from-cli"]).es_index == "from-cli"
    with pytest.raises(SystemExit) as exc:
        from_args(["--no_such_option", "1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        from_args(["--es"])  # no abbreviations


def test_binary_content_is_recognised():
    assert _binary("abc\x00def") and _binary("\x01\x02\x03" * 50)
    assert not _binary("Título\n\nUn párrafo con\ttabulador.\r\n")


def test_a_run_document_of_another_version_is_refused():
    from pipelines.options import DedupOptions
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipelines.config import JobConfig

    opts = PipelineOptions(["--input", "x.jsonl", "--output", "out"]).view_as(DedupOptions)
    settings = JobConfig.from_options(opts).settings()
    cfg = config_from_settings(settings)
    assert cfg.settings() == settings and cfg.units == tuple(settings["units"])
    with pytest.raises(NotServing, match="another version"):
        config_from_settings({**settings, "new_option": 1})
    with pytest.raises(NotServing, match="missing"):
        config_from_settings({k: v for k, v in settings.items() if k != "knn_k"})
