"""Two runs on one alias at once (a scheduler firing while the last job still runs): the second is
refused in the pre-flight with one line naming the first, and the first's tables and index equal
those of the same run alone; with --wait_for_lease the second waits for the first and then runs."""
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import main, run
from transforms.reporting.report import read_summary, read_table

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
LEASES = ".near-dup-leases"


def args(es_url, index, inp, out, *extra):
    return ["--input", str(inp), "--output", str(out), "--es_url", es_url, "--es_index", index, "--report_top", "0",
            *extra]


def tables(out: Path) -> dict[str, bytes]:
    """Every table file; groups_current without its lineage (relative to the state each run found)."""
    files = {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("part-*"))
             if f.parent.name != "groups_current"}
    files["groups_current"] = json.dumps(sorted((g["group_id"], g["canonical_id"], g["members"])
                                                for g in read_table(str(out), "groups_current"))).encode()
    return files


def snapshot(es_client, name: str) -> dict:
    es_client.indices.refresh(index=name)
    hits = es_client.search(index=name, size=10_000, sort=["_doc"], query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def start(argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.dedup", *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for_lease(es_client, alias, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if es_client.indices.exists(index=LEASES) and es_client.exists(index=LEASES, id=alias):
            return es_client.get(index=LEASES, id=alias)["_source"]
        time.sleep(0.1)
    raise AssertionError(f"no lease taken; job exit {proc.poll()}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")


@pytest.fixture()
def alias(es_client):
    name = f"test-overlap-{uuid.uuid4().hex[:8]}"
    yield name
    es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def test_a_second_run_on_the_alias_is_refused_and_the_first_is_unaffected(es_url, es_client, alias, tmp_path,
                                                                         capsys):
    out, small, out_b = tmp_path / "a", tmp_path / "small.jsonl", tmp_path / "b"
    small.write_text("".join(DEMO.read_text(encoding="utf-8").splitlines(keepends=True)[:20]), encoding="utf-8")
    run(args(es_url, alias, DEMO, out))  # the first run alone: the reference
    reference, reference_index = tables(out), snapshot(es_client, alias)
    run_id = read_summary(str(out))["run_id"]

    first = start(args(es_url, alias, DEMO, out))
    held = wait_for_lease(es_client, alias, first)
    assert held["run_id"] == run_id and held["mode"] == "full"
    capsys.readouterr()  # what the reference run printed
    assert main(args(es_url, alias, small, out_b)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: another run holds the lease on '{alias}': run '{run_id}'")
    assert "--wait_for_lease" in err[0]
    assert not out_b.exists() or not any(out_b.rglob("*"))  # the refused run wrote nothing
    assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    first.stderr.close()

    assert tables(out) == reference  # byte for byte, as the run alone
    assert snapshot(es_client, alias) == reference_index
    assert not es_client.exists(index=LEASES, id=alias)  # released at the end


def test_with_wait_for_lease_the_second_run_waits_and_then_runs(es_url, es_client, alias, tmp_path):
    out, small, out_b = tmp_path / "a", tmp_path / "small.jsonl", tmp_path / "b"
    small.write_text("".join(DEMO.read_text(encoding="utf-8").splitlines(keepends=True)[:20]), encoding="utf-8")
    first = start(args(es_url, alias, DEMO, out))
    wait_for_lease(es_client, alias, first)
    second = start(args(es_url, alias, small, out_b, "--wait_for_lease", "600"))
    assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    assert second.wait(timeout=600) == 0, second.stderr.read()[-3000:]
    for proc in (first, second):
        proc.stderr.close()
    first_summary, second_summary = read_summary(str(out)), read_summary(str(out_b))
    assert first_summary["counts"]["documents_read"] == 48 and second_summary["counts"]["documents_read"] == 20
    # The second ran after the first: the alias now holds its 20 documents only, in the other slot.
    assert second_summary["es_physical_index"] != first_summary["es_physical_index"]
    docs = {s["doc_id"] for s in snapshot(es_client, alias).values()}
    assert len(docs) == second_summary["counts"]["documents_cleaned"] <= 20
    assert json.loads(json.dumps(list(es_client.indices.get_alias(name=alias)))) == [second_summary["es_physical_index"]]
