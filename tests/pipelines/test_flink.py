"""The unchanged job on a real Flink cluster (scripts/services/flink.sh: one JobManager, two
TaskManagers, Beam's Flink job server, all on 127.0.0.1) against the DirectRunner."""
import os
import re
import sys
import uuid
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.dedup import run
from pipelines.runner import close_job_streams, default_process_environment
from transforms.io.bundles import ShardedBundles, stable_shard
from transforms.records import in_global_window
from transforms.reporting.report import read_summary

sys.path.insert(0, str(Path(__file__).parent))  # the incremental test's corpora
from test_incremental import corpora  # noqa: E402

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
SERVICES_DIR = Path(os.environ.get("SERVICES_DIR", REPO / ".services"))


def _flink(*args, **env):
    import subprocess
    return subprocess.run(["bash", str(REPO / "scripts" / "services" / "flink.sh"), *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, **env})


@pytest.fixture(scope="module")
def flink_endpoint():
    """The job server of the local cluster (started by `make test`; started here when run alone)."""
    if _flink("status").stdout.strip() != "running":
        started = _flink("start")
        if started.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"Flink did not start:\n{started.stderr[-3000:]}")
            pytest.skip(f"Flink not available here: {started.stderr.strip().splitlines()[-1:]}")
    return _flink("endpoint").stdout.strip()


def flink_args(endpoint, job_name):
    return ["--runner=PortableRunner", f"--job_endpoint={endpoint}", "--environment_type=PROCESS",
            "--environment_cache_millis=60000", "--parallelism=2", f"--job_name={job_name}"]


def table_bytes(out: Path) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("part-*"))}


def index_documents(es_client, index) -> list[dict]:
    es_client.indices.refresh(index=index)
    hits = es_client.search(index=index, size=10_000, track_total_hits=True)["hits"]
    assert hits["total"]["value"] == len(hits["hits"])
    return sorted(({"_id": h["_id"], **h["_source"]} for h in hits["hits"]), key=lambda d: d["_id"])


def worker_parents(job_name) -> dict[int, int]:
    """{SDK worker pid: pid of the process that started it} for the workers of `job_name`, from
    the first lines of the worker logs (pipelines/process_worker.py)."""
    found = {}
    for log in Path(_flink("worker-logs").stdout.strip()).glob("sdk-worker-*.log"):
        first = log.read_text(errors="replace").partition("\n")[0]
        match = re.fullmatch(r"near-dup: SDK worker \S+ \(pid (\d+), started by pid (\d+)\) starting for job (\S+)", first)
        if match and match.group(3) == job_name:
            found[int(match.group(1))] = int(match.group(2))
    return found


def taskmanager_pids() -> set[int]:
    return {int(p.read_text()) for p in SERVICES_DIR.glob("flink-taskmanager*.pid")}


def test_more_partitions_than_slots_run_a_few_at_a_time_in_batch_forced_mode(flink_endpoint, tmp_path):
    """--execution_mode_for_batch=BATCH_FORCED reaches Flink: a job of twice as many partitions as the
    cluster has slots completes (in the default PIPELINED mode it waits for slots that never come)."""
    import pipelines.options  # noqa: F401  (declares --execution_mode_for_batch)

    conf = next(SERVICES_DIR.glob("flink-*/conf/flink-conf.yaml")).read_text()
    slots = int(re.search(r"^parallelism.default: (\d+)$", conf, re.M).group(1))
    options = PipelineOptions(flink_args(flink_endpoint, f"near-dup-forced-{uuid.uuid4().hex[:8]}")
                              + [f"--parallelism={2 * slots}", "--execution_mode_for_batch=BATCH_FORCED"])
    assert default_process_environment(options)
    pipeline = beam.Pipeline(options=options)
    _ = (pipeline | beam.Create([(i % 7, i) for i in range(1000)]) | beam.GroupByKey()
         | beam.MapTuple(lambda k, v: f"{k},{sum(v)}") | beam.io.WriteToText(str(tmp_path / "out")))
    result = pipeline.run()
    try:
        assert result.wait_until_finish(duration=240_000) == "DONE"
    finally:
        close_job_streams(result)
    rows = sorted(line for f in tmp_path.glob("out*") for line in f.read_text().splitlines())
    assert rows == sorted(f"{k},{sum(range(k, 1000, 7))}" for k in range(7))


@pytest.mark.parametrize("one_per_key", [True, False])
def test_after_sharded_bundles_flink_runs_one_shard_per_bundle(flink_endpoint, tmp_path, one_per_key):
    """What transforms/io/bundles.py relies on: Flink's batch runner runs the stage after a stateful
    DoFn one key per bundle, so a stage's output in flight is one shard's. The control (a Reshuffle,
    as the job had) shows the default: one bundle holds a whole partition, many shards."""

    class ShardsOfBundle(beam.DoFn):  # defined here: the workers unpickle it by value (no tests package there)
        """element -> nothing; at each bundle's end "shard,shard,..." of its elements (shards of 8)."""

        def start_bundle(self):
            self.shards = set()

        def process(self, element):
            self.shards.add(stable_shard(str(element), 8))

        def finish_bundle(self):
            if self.shards:
                yield from in_global_window([",".join(map(str, sorted(self.shards)))])

    options = PipelineOptions(flink_args(flink_endpoint, f"near-dup-shards-{uuid.uuid4().hex[:8]}"))
    assert default_process_environment(options)
    pipeline = beam.Pipeline(options=options)
    numbers = pipeline | beam.Create(list(range(400)))
    spread = (numbers | ShardedBundles(key=str, shards=8)) if one_per_key else (numbers | beam.Reshuffle())
    _ = spread | beam.ParDo(ShardsOfBundle()) | beam.io.WriteToText(str(tmp_path / "out"))
    result = pipeline.run()
    try:
        assert result.wait_until_finish(duration=240_000) == "DONE"
    finally:
        close_job_streams(result)
    bundles = [line.split(",") for f in tmp_path.glob("out*") for line in f.read_text().splitlines()]
    assert sorted({s for shards in bundles for s in shards}) == [str(s) for s in range(8)]
    if one_per_key:
        assert len(bundles) == 8 and all(len(shards) == 1 for shards in bundles), bundles
    else:
        assert max(len(shards) for shards in bundles) > 1, bundles


def test_a_running_cluster_of_another_layout_is_refused_not_reused(flink_endpoint):
    """`flink.sh start` asked for another layout than the running cluster's: exit 2, cluster and config untouched."""
    conf = next(SERVICES_DIR.glob("flink-*/conf/flink-conf.yaml"))
    before = conf.read_bytes()
    slots = int(re.search(rb"^taskmanager.numberOfTaskSlots: (\d+)$", before, re.M).group(1))
    taskmanagers = len(taskmanager_pids())
    for variable, value in (("FLINK_SLOTS", slots + 1), ("FLINK_TASKMANAGERS", taskmanagers + 1)):
        refused = _flink("start", **{"FLINK_SLOTS": str(slots), "FLINK_TASKMANAGERS": str(taskmanagers), variable: str(value)})
        assert refused.returncode == 2 and "stop it first (make flink-stop)" in refused.stderr, refused.stderr
    assert conf.read_bytes() == before and _flink("status").stdout.strip() == "running"
    again = _flink("start", FLINK_SLOTS=str(slots), FLINK_TASKMANAGERS=str(taskmanagers))  # the same layout: reused
    assert again.returncode == 0 and "already running" in again.stderr


def test_demo_on_flink_gives_the_direct_runners_tables_index_and_counts(flink_endpoint, es_url, es_client, tmp_path):
    index = f"test-flink-{uuid.uuid4().hex[:8]}"
    job_name = f"near-dup-test-{uuid.uuid4().hex[:8]}"
    try:
        direct, flink = tmp_path / "direct", tmp_path / "flink"
        common = ["--input", str(DEMO), "--es_url", es_url, "--es_index", index]
        run([*common, "--output", str(direct)])
        direct_summary = read_summary(str(direct))
        direct_docs = index_documents(es_client, direct_summary["es_physical_index"])

        # Relative paths, as a user types them: the workers run in the TaskManagers' folder.
        os.chdir(tmp_path)
        run([*common, "--output", "flink", *flink_args(flink_endpoint, job_name)])
        flink_summary = read_summary(str(flink))

        # duplicates, groups, unit_matches, units, duplicates_current; groups_current relates each group
        # to the state the run found (the DirectRunner's, on the same alias): all unchanged.
        def tables(out):
            return {k: v for k, v in table_bytes(out).items() if not k.startswith("groups_current/")}

        assert tables(flink) == tables(direct)
        assert {p.split("/")[0] for p in table_bytes(flink)} >= {"duplicates", "groups", "unit_matches", "units",
                                                                  "duplicates_current", "groups_current"}
        n_groups = direct_summary["counts"]["groups"]
        assert direct_summary["counts"].pop("current_groups_by_change") == {"new": n_groups}
        assert flink_summary["counts"].pop("current_groups_by_change") == {"unchanged": n_groups}
        assert flink_summary["counts"] == direct_summary["counts"]
        assert flink_summary["counts"]["duplicate_pairs"] > 0 and flink_summary["run_id"] == direct_summary["run_id"]
        # Each run built its own blue/green slot; the documents in them are the same, vectors included.
        assert flink_summary["es_physical_index"] != direct_summary["es_physical_index"]
        assert index_documents(es_client, flink_summary["es_physical_index"]) == direct_docs
        assert list(es_client.indices.get_alias(name=index)) == [flink_summary["es_physical_index"]]
        # The work ran in SDK worker processes started by both TaskManagers (one each).
        parents = worker_parents(job_name)
        assert len(parents) == 2 and set(parents.values()) == taskmanager_pids() and len(taskmanager_pids()) == 2, parents

    finally:
        os.chdir(REPO)
        es_client.indices.delete(index=f"{index}*", ignore_unavailable=True)



def test_incremental_run_on_flink_gives_the_direct_runners_tables_and_counts(flink_endpoint, es_url, es_client, tmp_path):
    """--mode incremental on the engine: the same rows and counts as the same incremental run on the
    DirectRunner, each after the same full run on a fresh index. (Until the template stage's Reshuffle
    became a keyed shard step, Beam 2.62's batch translator refused this graph: "PCollectionNodes ...
    were consumed but never produced".)"""
    index = f"test-flink-incr-{uuid.uuid4().hex[:8]}"
    base, combined, _ = corpora(tmp_path)
    common = ["--es_url", es_url, "--es_index", index, "--report_top", "0"]
    outputs = {}
    try:
        for runner, extra in (("direct", []), ("flink", flink_args(flink_endpoint, f"near-dup-incr-{uuid.uuid4().hex[:8]}"))):
            es_client.indices.delete(index=f"{index}*", ignore_unavailable=True)
            run(["--input", str(base), "--output", str(tmp_path / f"{runner}-full"), *common])
            outputs[runner] = tmp_path / f"{runner}-incremental"
            run(["--input", str(combined), "--output", str(outputs[runner]), "--mode", "incremental", *common, *extra])
        direct, flink = (read_summary(str(outputs[r])) for r in ("direct", "flink"))
        assert table_bytes(outputs["flink"]) == table_bytes(outputs["direct"])
        assert {p.split("/")[0] for p in table_bytes(outputs["flink"])} >= {"duplicates", "groups_current", "unit_matches"}
        assert flink["counts"] == direct["counts"] and flink["run_id"] == direct["run_id"]
        assert direct["mode"] == "incremental" and direct["counts"]["documents_unchanged"] == 47  # it was incremental
        assert direct["counts"]["duplicate_pairs"] > 0
    finally:
        es_client.indices.delete(index=f"{index}*", ignore_unavailable=True)


def test_a_worker_error_fails_the_job_with_the_workers_message(flink_endpoint, tmp_path):
    """A DoFn that raises on the engine: a failed job whose error names the exception, never a green run."""
    options = PipelineOptions(flink_args(flink_endpoint, f"near-dup-fail-{uuid.uuid4().hex[:8]}"))
    assert default_process_environment(options)

    def explode(x):
        if x == 3:
            raise ValueError(f"record {x} is poisoned")
        return x

    pipeline = beam.Pipeline(options=options)
    _ = pipeline | beam.Create(list(range(6))) | beam.Map(explode) | beam.io.WriteToText(str(tmp_path / "out"))
    result = pipeline.run()
    try:
        with pytest.raises(RuntimeError, match="record 3 is poisoned"):
            result.wait_until_finish()
    finally:
        close_job_streams(result)
    assert not list(tmp_path.glob("out*"))
