"""Wrong credentials or a missing secret stop the job in its pre-flight check, with a clear message and
before any heavy work; the right credentials reach every Elasticsearch call of the job."""
import json
import time
import uuid

import pytest

from pipelines.dedup import main
from transforms.reporting.report import read_summary

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
USER, RIGHT, WRONG = "dedup-writer", "Right-Pass-7f3a", "Wrong-Pass-91c2"


@pytest.fixture()
def secured(es_fault_proxy, es_client):
    """The live Elasticsearch behind a proxy that enforces basic auth, as a secured cluster does."""
    es_fault_proxy.require_basic_auth(USER, RIGHT)
    name = f"test-auth-{uuid.uuid4().hex[:8]}"
    yield es_fault_proxy, name
    es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def args(url, index, inp, out):
    return ["--input", str(inp), "--output", str(out), "--es_url", url, "--es_index", index,
            "--es_username", USER, "--es_password_env", "DEDUP_TEST_ES_PASSWORD", "--report_top", "0"]


def corpus(tmp_path):
    inp = tmp_path / "in.jsonl"
    texts = ["La fotosíntesis convierte la luz del sol en energía química dentro de los cloroplastos de la hoja.",
             "La fotosíntesis convierte la luz del sol en energía química dentro de los cloroplastos de la hoja.",
             "Los volcanes se forman donde el magma asciende a través de grietas de la corteza terrestre."]
    inp.write_text("".join(json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(texts)), encoding="utf-8")
    return inp


def test_wrong_credentials_fail_in_preflight_before_any_work(secured, es_client, tmp_path, monkeypatch, capsys):
    proxy, index = secured
    monkeypatch.setenv("DEDUP_TEST_ES_PASSWORD", WRONG)
    out = tmp_path / "never"
    started = time.monotonic()
    code = main(args(proxy.url, index, corpus(tmp_path), out))
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    assert f"Elasticsearch at {proxy.url} rejected the credentials (401)" in err
    assert "Traceback" not in err and WRONG not in err and RIGHT not in err
    assert proxy.refused >= 1 and proxy.forwarded == 0  # nothing was written
    assert not out.exists() and not dict(es_client.indices.get(index=f"{index}*"))
    assert elapsed < 20, elapsed  # no model loaded, no pipeline built


def test_missing_secret_variable_is_named_in_a_clear_error(secured, tmp_path, monkeypatch, capsys):
    proxy, index = secured
    monkeypatch.delenv("DEDUP_TEST_ES_PASSWORD", raising=False)
    code = main(args(proxy.url, index, corpus(tmp_path), tmp_path / "never"))
    err = capsys.readouterr().err
    assert code == 2 and "DEDUP_TEST_ES_PASSWORD" in err and "Traceback" not in err
    assert proxy.refused == 0  # refused locally, before any request


def test_right_credentials_reach_every_elasticsearch_call(secured, es_client, tmp_path, monkeypatch, capsys):
    proxy, index = secured
    monkeypatch.setenv("DEDUP_TEST_ES_PASSWORD", RIGHT)
    out = tmp_path / "out"
    assert main(args(proxy.url, index, corpus(tmp_path), out)) == 0
    counts = read_summary(str(out))["counts"]
    assert proxy.refused == 0 and proxy.forwarded >= 1  # bulk writes from the workers carried the password
    assert counts["indexed"] == counts["vectors"] >= 3 and counts["duplicate_pairs"] == 1
    assert RIGHT not in capsys.readouterr().err + (out / "summary.json").read_text()
