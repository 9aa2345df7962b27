"""A job killed halfway (SIGKILL in the middle of the Elasticsearch write) and then re-run leaves the
index and every output table exactly as one clean run does: nothing missing, nothing twice. While the
crashed run wrote, readers of the alias kept seeing the previous complete index."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipelines.dedup import run
from transforms.reporting.report import read_summary, read_table

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"


def job_args(es_url, index, out):
    # Small bulk requests, so the write stage is many requests long and the kill lands inside it. A
    # short lease: the one the killed run leaves expires 5 s after its last heartbeat, and the re-run
    # waits for that.
    return ["--input", str(DEMO), "--output", str(out), "--es_url", es_url, "--es_index", index,
            "--es_batch_size", "20", "--report_top", "5", "--lease_ttl", "5", "--wait_for_lease", "90"]


def outputs(out: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file the job wrote, summary.json (without the blue/green index
    name, which alternates between full runs) and report.html included."""
    # groups_current relates each group to the state the run found (the clean run's, for the re-run):
    # compared without its lineage columns.
    files = {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*"))
             if f.is_file() and f.parent.name != "groups_current"}
    files["groups_current"] = json.dumps(sorted((g["group_id"], g["canonical_id"], g["members"])
                                                for g in read_table(str(out), "groups_current"))).encode()
    if "summary.json" in files:
        summary = json.loads(files["summary.json"])
        summary.pop("es_physical_index")
        summary["counts"].pop("current_groups_by_change")
        summary["settings"].pop("es_url")  # the re-run reaches the same cluster through the fault proxy
        files["summary.json"] = json.dumps(summary, sort_keys=True).encode()
    return files


def index_snapshot(es_client, name: str) -> dict[str, dict]:
    """{_id: _source} of every vector in index (or alias) `name`."""
    es_client.indices.refresh(index=name)
    hits = es_client.search(index=name, size=10_000, sort=["_doc"], query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


@pytest.fixture()
def index_name(es_client):
    name = f"test-crash-{uuid.uuid4().hex[:8]}"
    yield name
    es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def test_rerun_after_a_crash_halfway_equals_one_clean_run(es_url, es_client, es_fault_proxy, index_name, tmp_path):
    out = tmp_path / "out"
    run(job_args(es_url, index_name, out))  # the reference: one clean run
    clean_files, clean_index = outputs(out), index_snapshot(es_client, index_name)
    summary = read_summary(str(out))
    assert len(clean_index) == summary["counts"]["indexed"] > 100
    assert summary["counts"]["duplicate_pairs"] > 10

    live = summary["es_physical_index"]
    # Run the job again and crash it in the middle of its write stage (into the other slot).
    es_fault_proxy.delay_after_forward(1.0, 1000)  # every bulk answered 1 s late: the stage lasts > 10 s
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.dedup", *job_args(es_fault_proxy.url, index_name, out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while es_fault_proxy.forwarded < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr[-3000:]

    # The crash left a partial index in the other slot, no summary and no pair tables (units/ may be
    # complete already: it is written from the split units while embedding waits for its groups);
    # the alias still serves the complete index of the clean run.
    other = live[:-1] + ("b" if live.endswith("a") else "a")
    partial = index_snapshot(es_client, other)
    assert 0 < len(partial) < len(clean_index)
    assert set(partial) < set(clean_index)
    assert not (out / "summary.json").exists()
    assert not [f for f in out.rglob("part-*") if f.parent.name in ("duplicates", "groups", "unit_matches")]
    assert list(es_client.indices.get_alias(name=index_name)) == [live]
    assert index_snapshot(es_client, index_name) == clean_index
    # The killed run's lease is still there (nobody released it); it expires, the re-run takes it over.
    assert es_client.get(index=".near-dup-leases", id=index_name)["_source"]["run_id"] == summary["run_id"]

    es_fault_proxy.plan.clear()
    run(job_args(es_fault_proxy.url, index_name, out))  # the re-run, through the same proxy URL
    assert outputs(out) == clean_files  # tables, dead letters, summary and report: byte for byte
    assert index_snapshot(es_client, index_name) == clean_index  # same ids, same vectors, nothing extra
    assert list(es_client.indices.get_alias(name=index_name)) == [other]  # the rebuilt slot is live now
    assert not es_client.exists(index=".near-dup-leases", id=index_name)  # released at the end
