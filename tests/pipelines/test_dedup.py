"""End-to-end runs of the dedup job on the DirectRunner against the live Elasticsearch."""
import json
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import main, run
from pipelines.evaluate import read_gold, score_pairs
from transforms.records import ConfigError
from transforms.reporting.report import read_dead_letters, read_duplicates, read_summary, read_table, read_units

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
GOLD = REPO / "demo" / "gold.tsv"


def job_args(es_url, index, inp, out, *extra):
    return ["--input", str(inp), "--output", str(out), "--es_url", es_url, "--es_index", index, *extra]


def table_bytes(out: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every table file of a run (summary.json and report.html excluded)."""
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("part-*"))}


@pytest.fixture()
def index_name(es_client):
    name = f"test-job-{uuid.uuid4().hex[:8]}"
    yield name
    es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def test_demo_run_finds_the_planted_duplicates_and_reruns_identically(es_url, es_client, index_name, tmp_path):
    out = tmp_path / "out"
    run(job_args(es_url, index_name, DEMO, out))
    summary = read_summary(str(out))
    c = summary["counts"]
    n_lines = sum(1 for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip())
    assert c["documents_read"] + c["dead_letter_read"] == n_lines == 48
    assert c["documents_cleaned"] + c["dead_letter_clean"] == c["documents_read"]
    matched = c["units_by_type"]["document"] + c["units_by_type"]["paragraph"]  # --match_units default
    assert c["indexed"] + c["dead_letter_es"] == c["vectors"] == c["signatures"] == matched
    es_client.indices.refresh(index=index_name)
    assert es_client.count(index=index_name)["count"] == c["indexed"]
    # Every vector records the model, the fingerprint of its files and its dimension.
    hits = es_client.search(index=index_name, size=1000, source_includes=["model", "model_hash", "dims"])["hits"]["hits"]
    assert len(hits) == c["indexed"] and summary["model_info"]["fingerprint"]
    assert {(h["_source"]["model"], h["_source"]["model_hash"], h["_source"]["dims"]) for h in hits} == {
        (summary["model"], summary["model_info"]["fingerprint"], 384)}

    rows = read_duplicates(str(out))
    assert c["duplicate_pairs"] == len(rows)
    assert all(r["doc_a"] < r["doc_b"] and r["run_id"] == summary["run_id"] for r in rows)
    assert {r["method"] for r in rows} <= {"knn", "minhash", "knn+minhash"}
    by_pair = {(r["doc_a"], r["doc_b"]): r for r in rows}
    exact = by_pair[("es-fotosintesis", "es-fotosintesis-repost")]
    assert exact["method"] == "knn+minhash" and exact["jaccard"] == 1.0 and exact["cosine"] > 0.999
    assert all(r["cosine"] is not None and r["jaccard"] is not None for r in rows)  # both scores, always
    assert c["lsh_oversized_buckets"] == 0
    assert c["by_source"][str(DEMO)] == {"records": 48, "processed": 48, "dead_lettered": 0, "reconciled": True}
    assert c["units_by_type"]["document"] == 48 and c["units_by_type"]["paragraph"] >= 96
    assert c["units"] == sum(c["units_by_type"].values())
    assert len({(r["doc_a"], r["doc_b"]) for r in rows}) == len(rows)

    positives, negatives = read_gold(str(GOLD))
    scores = score_pairs({(r["doc_a"], r["doc_b"]) for r in rows}, positives, negatives)
    for kind in ("exact", "html", "light", "shared_paragraph"):  # all near-verbatim reuse must be found
        assert scores["recall_by_kind"][kind]["recall"] == 1.0, scores
    groups = {tuple(g["members"]): g for g in read_table(str(out), "groups")}
    # The course guide reuses one paragraph of both cell articles: passage reuse, not one group.
    cell = groups[("es-celula", "es-celula-portal")]
    assert cell["canonical_id"] == "es-celula" and cell["size"] == 2  # published first
    duplicates = [r for r in rows if r["relation"] == "duplicate"]
    assert c["groups"] == len(groups) and sum(g["size"] for g in groups.values()) == len(
        {d for r in duplicates for d in (r["doc_a"], r["doc_b"])})
    assert by_pair[("es-celula", "es-celula-portal")]["group_id"] == cell["group_id"]
    assert all(r["canonical_id"] in (r["doc_a"], r["doc_b"]) for r in duplicates)
    shared = by_pair[("es-celula", "es-guia-biologia-tema1")]
    assert shared["relation"] == "passage" and shared["group_id"] is None
    assert c["passage_pairs"] == sum(r["relation"] == "passage" for r in rows) == 4
    # the paragraph matched, and most of the article's own shingles are in the guide (containment clause)
    assert shared["granularity"] == "document+paragraph" and shared["matched_units"] == 1
    assert shared["rule"].startswith("paragraph: ")
    assert 0.3 < shared["coverage_a"] < 0.7 and 0.3 < shared["coverage_b"] < 0.7
    texts = {d["id"]: d for d in map(json.loads, DEMO.read_text(encoding="utf-8").splitlines())}
    units = {(u["unit_id"]): u for u in read_units(str(out))}
    evidence = json.loads(shared["evidence"])[0]
    assert units[evidence["unit_a"]]["text"] == units[evidence["unit_b"]]["text"]  # the copied passage
    assert evidence["a_end"] - evidence["a_start"] == len(units[evidence["unit_a"]]["text"])
    assert texts["es-celula"]["text"].split("\n\n")[1] == units[evidence["unit_a"]]["text"]
    assert not scores["labelled_negatives_found"], scores
    assert scores["precision"] >= 0.9, scores

    # Re-running the same job replaces its outputs with byte-identical tables and overwrites the
    # same index documents.
    tables = table_bytes(out)
    assert {p.split("/")[0] for p in tables} == {"duplicates", "groups", "unit_matches", "units",
                                                 "duplicates_current", "groups_current"}
    assert {p.rsplit(".", 1)[1] for p in tables} == {"parquet", "jsonl"}
    # A first run's current state is its own pairs and groups, all of them new.
    current = read_table(str(out), "groups_current")
    assert {g["change"] for g in current} == {"new"} and len(current) == c["groups"] == c["current_groups"]
    first_index = summary["es_physical_index"]
    assert list(es_client.indices.get_alias(name=index_name)) == [first_index]
    run(job_args(es_url, index_name, DEMO, out))
    # groups_current says how each group relates to the state this attempt found: the first run's.
    lineage = {p for p in tables if p.startswith("groups_current/")}
    assert {k: v for k, v in table_bytes(out).items() if k not in lineage} == {
        k: v for k, v in tables.items() if k not in lineage}
    again_groups = read_table(str(out), "groups_current")
    assert {g["change"] for g in again_groups} == {"unchanged"}
    assert [{k: g[k] for k in ("group_id", "canonical_id", "members")} for g in again_groups] == [
        {k: g[k] for k in ("group_id", "canonical_id", "members")} for g in current]
    assert read_duplicates(str(out)) == rows
    es_client.indices.refresh(index=index_name)
    assert es_client.count(index=index_name)["count"] == c["indexed"]
    again = read_summary(str(out))
    # A full run builds the other blue/green slot and moves the alias at its end; the first is kept.
    assert again.pop("es_physical_index") != summary.pop("es_physical_index")
    assert list(es_client.indices.get_alias(name=index_name)) == [f"{first_index[:-1]}{'b' if first_index[-1] == 'a' else 'a'}"]
    assert again["counts"].pop("current_groups_by_change") == {"unchanged": c["groups"]}
    assert summary["counts"].pop("current_groups_by_change") == {"new": c["groups"]}
    assert again == summary


def test_bad_records_go_to_dead_letters_and_counts_reconcile(es_url, index_name, tmp_path):
    inp = tmp_path / "mixed.jsonl"
    good = [{"id": f"ok{i}", "text": f"Documento válido número {i} sobre la historia de la ciencia y sus métodos."}
            for i in range(4)]
    lines = [json.dumps(d, ensure_ascii=False).encode() for d in good] + [
        b'{"id": "trunc", "text": "sin cerrar',
        b'{"id": "latin1", "text": "caf\xe9 con leche y un poco de texto para superar el m\xednimo"}',
        b'{"text": "sin identificador"}',
        json.dumps({"id": "nav", "text": "<html><body><nav><a href='/'>Inicio</a> <a href='/c'>Cursos</a>"
                                         "</nav><footer>Aviso legal y politica de privacidad</footer></body></html>"}).encode(),
        json.dumps({"id": "blank", "text": "   \n\t  "}).encode(),
        json.dumps({"id": "ok0", "text": "Otro texto con el mismo identificador que el primero, debe ir a dead letters."}).encode(),
        json.dumps({"id": "nul", "text": "texto con \u0000 byte nulo en medio de la frase"}).encode(),
    ]
    inp.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    run(job_args(es_url, index_name, inp, out))
    c = read_summary(str(out))["counts"]
    assert (c["documents_read"], c["dead_letter_read"], c["dead_letter_duplicate_id"], c["dead_letter_clean"],
            c["documents_cleaned"]) == (7, 4, 1, 2, 4)
    assert c["indexed"] == c["vectors"]
    assert c["by_source"] == {str(inp): {"records": 11, "processed": 4, "dead_lettered": 7, "reconciled": True}}
    reasons = {(r["record_id"], r["stage"], r["reason"]) for r in read_dead_letters(str(out))}
    assert reasons == {(None, "read", "invalid_json"), (None, "read", "invalid_utf8"),
                       (None, "read", "missing_id"), ("nul", "read", "invalid_text"),
                       ("ok0", "read", "duplicate_id"), ("nav", "clean", "empty_after_cleaning"),
                       ("blank", "clean", "empty_after_cleaning")}


def test_missing_options_and_unreachable_elasticsearch_fail_before_any_work(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--output"):
        run(["--input", str(DEMO)])
    with pytest.raises(ConfigError, match="exactly one input"):
        run(["--input", str(DEMO), "--bq_table", "p:d.t", "--output", str(tmp_path)])
    out = tmp_path / "never"
    code = main(job_args("http://127.0.0.1:9", "x", DEMO, out))
    assert code == 2
    assert "not reachable" in capsys.readouterr().err
    assert not out.exists()


def test_a_job_that_fails_while_it_is_built_leaves_no_temp_folder(tmp_path, monkeypatch):
    """beam.Pipeline() makes a local temp folder that only run() removes: a build error must remove it."""
    import tempfile

    import pipelines.dedup as dedup

    def broken(*args, **kwargs):
        raise RuntimeError("broken graph")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(dedup, "build_pipeline", broken)
    with pytest.raises(RuntimeError, match="broken graph"):
        run(["--input", str(DEMO), "--output", str(tmp_path / "out"), "--vector_store", "memory"])
    assert not list(tmp_path.glob("beam-pipeline-temp*"))


def test_a_lost_taskmanager_fails_the_run_with_a_hint(monkeypatch, capsys):
    """The engine's error is re-raised as it came; when a TaskManager died, the launcher says where to look."""
    import pipelines.dedup as dedup

    def lost(argv):
        raise RuntimeError("Pipeline BeamApp-x failed in state FAILED: org.apache.flink.runtime.jobmaster."
                           "JobMasterException: TaskManager with id tm1 is no longer reachable.")

    monkeypatch.setattr(dedup, "run", lost)
    with pytest.raises(RuntimeError, match="no longer reachable"):
        main(["--input", "x", "--output", "y"])
    err = capsys.readouterr().err
    assert "flink-taskmanager" in err and "FLINK_TM_PROCESS=" in err

    def worker_error(argv):
        raise RuntimeError("Pipeline failed: ValueError: record 3 is poisoned")

    monkeypatch.setattr(dedup, "run", worker_error)
    with pytest.raises(RuntimeError, match="poisoned"):
        main(["--input", "x", "--output", "y"])
    assert "hint" not in capsys.readouterr().err


def test_bigquery_output_tables_are_replaced_per_run(bigquery_emulator, gcs_bucket, bq_endpoints, tmp_path, monkeypatch):
    """FILE_LOADS into the BigQuery emulator (staged on the GCS emulator); a re-run replaces its rows."""
    from google.cloud import bigquery

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_endpoints["rest"])  # the driver-side DELETE
    dataset = f"dedup_{uuid.uuid4().hex[:8]}"
    bigquery_emulator.create_dataset(bigquery.Dataset(f"data-project.{dataset}"))
    out = tmp_path / "out"
    args = ["--input", str(DEMO), "--output", str(out), "--vector_store", "memory",
            "--bq_output_dataset", f"data-project:{dataset}", "--run_date", "2026-11-26",
            "--project", "test-project", "--temp_location", f"{gcs_bucket}/tmp"]
    for _ in range(2):
        run(args)
        local = read_duplicates(str(out))
        stored = [dict(r) for r in bigquery_emulator.query(
            f"SELECT doc_a, doc_b, group_id, run_id, CAST(run_date AS STRING) AS run_date "
            f"FROM `data-project.{dataset}.duplicates` ORDER BY doc_a, doc_b").result()]
        assert [(r["doc_a"], r["doc_b"], r["group_id"]) for r in stored] == \
            [(r["doc_a"], r["doc_b"], r["group_id"]) for r in local]
        assert {r["run_date"] for r in stored} == {"2026-11-26"}
        n_groups = list(bigquery_emulator.query(f"SELECT COUNT(*) AS n FROM `data-project.{dataset}.groups`").result())
        assert n_groups[0]["n"] == read_summary(str(out))["counts"]["groups"]
        # The current tables are replaced, not appended: after the second run they still hold one copy.
        current = [dict(r) for r in bigquery_emulator.query(
            f"SELECT doc_a, doc_b, group_id FROM `data-project.{dataset}.duplicates_current` ORDER BY doc_a, doc_b").result()]
        assert [(r["doc_a"], r["doc_b"], r["group_id"]) for r in current] == \
            [(r["doc_a"], r["doc_b"], r["group_id"]) for r in local]
        groups = [dict(r) for r in bigquery_emulator.query(
            f"SELECT group_id, change FROM `data-project.{dataset}.groups_current`").result()]
        assert len(groups) == read_summary(str(out))["counts"]["current_groups"]
        assert {g["change"] for g in groups} == {"new"}  # without an index there is no stored state


def test_rule_expression_decides_and_is_recorded(tmp_path):
    out = tmp_path / "out"
    run(["--input", str(DEMO), "--output", str(out), "--vector_store", "memory", "--match_units", "document",
         "--rule", "cosine >= 0.99 and jaccard >= 0.9"])
    rows = read_duplicates(str(out))
    assert len(rows) >= 4  # the four verbatim copies at least
    assert all(r["cosine"] >= 0.99 and r["jaccard"] >= 0.9 and r["rule"] == "cosine >= 0.99 and jaccard >= 0.9"
               for r in rows)
    assert ("en-newton-laws", "en-newton-laws-notes") not in {(r["doc_a"], r["doc_b"]) for r in rows}  # J 0.6
    with pytest.raises(ConfigError, match="only cosine, jaccard"):
        run(["--input", str(DEMO), "--output", str(out), "--rule", "open('x')"])
