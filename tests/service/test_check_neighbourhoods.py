"""The neighbourhoods a run stores beside its index (transforms/io/neighbourhood_store.py) and the draft check.

A full demo run, then an incremental run adding one document, in the live Elasticsearch: the stored
rows are the job's own kNN searches (bit-equal to searching again), the check takes them instead of
searching, only from the run the alias points to, and answers exactly as a check that searches every
neighbourhood itself.
"""
import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import run
from service.checker import DraftChecker
from transforms.incremental.state import es_id_of_unit
from transforms.io.elasticsearch import EsConnection
from transforms.io.elasticsearch_store import alias_target
from transforms.io.neighbourhood_store import around_index, row_to_neighbourhood
from transforms.io.run_state import read_run_state
from transforms.matching.knn import knn_query, read_knn_result
from transforms.reporting.report import read_summary

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"


def demo_docs() -> dict:
    return {d["id"]: d for d in map(json.loads, DEMO.read_text(encoding="utf-8").splitlines()) if d.get("id")}


def stored_rows(client, physical: str) -> dict:
    from elasticsearch import helpers

    client.indices.refresh(index=around_index(physical))
    return {h["_source"]["unit_id"]: h["_source"]
            for h in helpers.scan(client, index=around_index(physical), query={"query": {"match_all": {}}})}


def searching_everything(checker: DraftChecker) -> DraftChecker:
    """The same checker serving a run document that names no stored neighbourhoods (an older index)."""
    state = checker.state()
    checker._state = dataclasses.replace(state, run={**state.run, "neighbourhoods": None})
    checker.state_ttl_s = 3600.0
    return checker


def answers(checker: DraftChecker, docs: dict, ids) -> dict:
    out = {}
    for doc_id in ids:
        d = docs[doc_id]
        result = checker.check(d["text"], title=d.get("title"), url=d.get("url"), lang=d.get("lang"), doc_id=doc_id)
        out[doc_id] = (result["matches"], result["searched"])
    return out


@pytest.fixture(scope="module")
def runs(es_url, tmp_path_factory):
    """{"alias", "full", "incremental"}: output dirs of a full demo run and an incremental run adding a
    document that reuses a paragraph of an indexed one; indices deleted afterwards."""
    from elasticsearch import Elasticsearch

    alias, base = f"test-around-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("around")
    run(["--input", str(DEMO), "--output", str(base / "full"), "--es_url", es_url, "--es_index", alias])
    docs = demo_docs()
    reused = docs["es-fotosintesis"]["text"].split("\n\n")[0]
    added = base / "added.jsonl"
    added.write_text(DEMO.read_text(encoding="utf-8") + json.dumps({
        "id": "es-nuevo-articulo", "title": "Un artículo nuevo", "lang": "es",
        "text": "Este artículo nuevo trata de otra cosa y cita un párrafo.\n\n" + reused}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    run(["--input", str(added), "--output", str(base / "incremental"), "--es_url", es_url, "--es_index", alias,
         "--mode", "incremental"])
    yield {"alias": alias, "full": base / "full", "incremental": base / "incremental", "docs": docs}
    client = Elasticsearch(es_url)
    client.indices.delete(index=f"{alias}*", ignore_unavailable=True)
    client.close()


def test_a_runs_stored_neighbourhoods_are_its_own_knn_searches(es_client, runs):
    physical = alias_target(es_client, runs["alias"])
    state = read_run_state(es_client, physical)
    summary = read_summary(str(runs["incremental"]))
    assert state["neighbourhoods"]["index"] == around_index(physical) and state["neighbourhoods"]["generation"]
    rows = stored_rows(es_client, physical)
    full = read_summary(str(runs["full"]))["counts"]["neighbourhoods_stored"]
    # the full run stored one row per unit it searched (every matchable unit); the incremental run
    # wrote those it searched (the new document's units, the stored ends of its pairs) under its own generation
    current = {u for u, r in rows.items() if r["generation"] == state["neighbourhoods"]["generation"]}
    added = {u for u in current if u.startswith("es-nuevo-articulo")}
    assert full >= 100 and len(rows) == full + len(added)
    assert len(current) == summary["counts"]["neighbourhoods_stored"] and current - added
    assert {"es-nuevo-articulo", "es-nuevo-articulo#p1"} <= added
    assert len({r["generation"] for r in rows.values()}) == 2  # the other rows are the full run's
    # each row is what searching that unit's stored vector in the index returns now (bit-equal), for the
    # rows of the served generation
    cfg = state["settings"]
    sample = sorted(current)[:40]
    units = es_client.mget(index=physical, ids=[es_id_of_unit(u) for u in sample])["docs"]
    searches = []
    for u in units:
        src = u["_source"]
        searches += [{"index": physical}, knn_query({"id": src["unit_id"], "doc_id": src["doc_id"], "unit_type": src["unit_type"],
                                                     "vector": src["vector"]}, cfg["knn_k"], cfg["knn_num_candidates"],
                                                    cfg["knn_exclude_same_document"],
                                                    cfg["document_search"] == "exact")]
    for unit_id, result in zip(sample, es_client.msearch(searches=searches)["responses"]):
        assert row_to_neighbourhood(rows[unit_id]) == read_knn_result(unit_id, result, cfg["knn_k"]), unit_id


def test_the_check_takes_the_served_runs_neighbourhoods_and_answers_as_if_it_searched(es_url, runs):
    ids = ["es-fotosintesis", "es-fotosintesis-repost", "es-revolucion-francesa"]
    stored = answers(DraftChecker(EsConnection(url=es_url), runs["alias"]), runs["docs"], ids)
    searched = answers(searching_everything(DraftChecker(EsConnection(url=es_url), runs["alias"])), runs["docs"], ids)
    assert any(m for m, _ in stored.values())
    for doc_id in ids:
        assert stored[doc_id][0] == searched[doc_id][0], doc_id  # the same matches, scores and margins, bit for bit
        assert searched[doc_id][1]["neighbourhoods_stored"] == 0
    # the units the incremental run searched again (the reused paragraph's original, its document)
    # come from the store; the full run's rows are older than the index now and are searched again
    assert stored["es-fotosintesis"][1]["neighbourhoods_stored"] > 0
    assert sum(s["neighbourhoods_searched"] for _, s in stored.values()) > 0
