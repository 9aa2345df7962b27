"""The same job on the DirectRunner and on the local Flink cluster: wall time, docs/s, peak memory.

    python bench/engine_bench.py --sizes 1000,2000 --es_url http://127.0.0.1:9200 \\
        --out bench/results/engine.json

Corpus: the HTML pages of Debian's libreoffice-help-es with 10% planted near-duplicates (the
generator of bench/pipeline_bench.py). For each size, the job runs with default settings as a user
starts it (`python -m pipelines.dedup`, its own process):
- direct: the DirectRunner, multi_processing with one worker per core;
- flink: `--runner=PortableRunner --environment_type=PROCESS --parallelism=2` against the cluster of
  scripts/services/flink.sh (started first; one JobManager, two TaskManagers, the job server).
Memory is the peak of the summed PSS (shared pages counted once) of every process of the run,
sampled every 0.2 s: the launcher and its children, and for Flink also the JobManager, the
TaskManagers with the SDK worker processes they start, and the job server. The Flink cluster's idle
PSS before the job is reported beside it. The duplicates/ tables of both runners are compared byte
for byte (the same pairs, scores and evidence).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402
from pipeline_bench import corpus, pss_and_parents, quality  # noqa: E402
from prep_bench import fetch_pages  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FLINK = REPO / "scripts" / "services" / "flink.sh"
SERVICES_DIR = Path(os.environ.get("SERVICES_DIR", REPO / ".services"))
FLINK_PROCESSES = ("flink-jobmanager", "flink-taskmanager1", "flink-taskmanager2", "flink-jobserver")


def tree_pss(roots: dict[str, int]) -> dict[str, int]:
    """{root name: summed PSS of that process and its descendants}."""
    pss, parents = pss_and_parents()
    owner = {pid: name for name, pid in roots.items()}
    out = dict.fromkeys(roots, 0)
    for pid, size in pss.items():
        p, hops = pid, 0
        while p and p not in owner and hops < 50:
            p, hops = parents.get(p, 0), hops + 1
        if p in owner:
            out[owner[p]] += size
    return out


class Sampler(threading.Thread):
    """Peak of the summed PSS of the process trees in `roots` (a callable: name -> pid), when it
    happened (seconds from the start) and a timeline of {process: MB} every `every` seconds."""

    def __init__(self, roots, interval: float = 0.2, every: float = 10.0):
        super().__init__(daemon=True)
        self.roots, self.interval, self.every = roots, interval, every
        self.peak, self.at_peak, self.peak_s, self.stopped = 0, {}, 0.0, threading.Event()
        self.timeline: list[dict] = []

    def run(self):
        start = time.perf_counter()
        while not self.stopped.is_set():
            per = tree_pss(self.roots())
            now = time.perf_counter() - start
            if sum(per.values()) > self.peak:
                self.peak, self.at_peak, self.peak_s = sum(per.values()), per, now
            if not self.timeline or now - self.timeline[-1]["t"] >= self.every:
                self.timeline.append({"t": round(now), **{k: round(v / 2**20) for k, v in per.items()}})
            time.sleep(self.interval)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def flink_pids() -> dict[str, int]:
    return {name: int((SERVICES_DIR / f"{name}.pid").read_text()) for name in FLINK_PROCESSES
            if (SERVICES_DIR / f"{name}.pid").exists()}


def run_job(runner: str, inp: str, out: str, es_url: str, workers: int, flink_args: tuple = ()) -> dict:
    index = f"bench-engine-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "pipelines.dedup", "--input", inp, "--output", out, "--es_url", es_url,
            "--es_index", index, "--report_top", "0"]
    if runner == "direct":
        argv += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    else:
        endpoint = subprocess.run(["bash", str(FLINK), "endpoint"], capture_output=True, text=True).stdout.strip()
        argv += ["--runner=PortableRunner", f"--job_endpoint={endpoint}", "--environment_type=PROCESS",
                 "--environment_cache_millis=60000", f"--parallelism={workers}", *flink_args]
    idle = sum(tree_pss(flink_pids()).values()) if runner == "flink" else 0
    log = open(f"{out}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    roots = (lambda: {"launcher": proc.pid, **flink_pids()}) if runner == "flink" else (lambda: {"launcher": proc.pid})
    sampler = Sampler(roots)
    sampler.start()
    rc = proc.wait()
    wall = time.perf_counter() - start
    peak = sampler.stop()
    log.close()
    from elasticsearch import Elasticsearch
    Elasticsearch(es_url).indices.delete(index=f"{index}*", ignore_unavailable=True)
    if rc != 0:
        raise RuntimeError(f"{runner} run failed (rc {rc}); see {out}.log")
    summary = json.loads(Path(out, "summary.json").read_text())
    return {"wall_s": round(wall, 1), "peak_mb": round(peak / 2**20), "idle_cluster_mb": round(idle / 2**20),
            "peak_by_process_mb": {k: round(v / 2**20) for k, v in sampler.at_peak.items()},
            "peak_at_s": round(sampler.peak_s), "timeline_mb": sampler.timeline,
            "duplicate_pairs": summary["counts"]["duplicate_pairs"], "units": summary["counts"]["units"]}


def table_bytes(out: str, table: str) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(Path(out, table).glob("part-*"))}


def compare_rows(a: str, b: str, table: str) -> str | dict:
    """How two runs' rows of `table` compare, apart from `run_id` (it names the input path, and the
    two runners read copies in different folders): "identical", or the row counts, the keys (the
    table's id columns) found in one run only and which columns differ in how many shared rows."""
    from transforms.reporting.report import read_table

    key = {"duplicates": ("doc_a", "doc_b"), "groups": ("group_id",), "unit_matches": ("unit_a", "unit_b")}[table]
    rows_a, rows_b = ({tuple(r[k] for k in key): r for r in read_table(o, table)} for o in (a, b))
    keys_a, keys_b = set(rows_a), set(rows_b)
    differ = {}
    for k in keys_a & keys_b:
        for col in sorted(set(rows_a[k]) | set(rows_b[k])):
            if col != "run_id" and rows_a[k].get(col) != rows_b[k].get(col):
                differ[col] = differ.get(col, 0) + 1
    if keys_a == keys_b and not differ:
        return "identical"
    return {"rows": [len(rows_a), len(rows_b)], "only_first": len(keys_a - keys_b),
            "only_second": len(keys_b - keys_a), "columns_differ_in_shared_rows": differ}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,2000")
    ap.add_argument("--runners", default="direct,flink")
    ap.add_argument("--workers", type=int, default=2, help="DirectRunner workers and Flink parallelism")
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--out", default="")
    ap.add_argument("--flink_args", default="",
                    help="More job arguments for the Flink runs, e.g. '--sdk_worker_parallelism=2 --disable_metrics=true' "
                         "(the cluster's layout comes from FLINK_TASKMANAGERS and FLINK_SLOTS)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per size and runner; a Flink repeat starts on a fresh cluster, and the repeats' "
                         "tables are compared row by row with the first run's")
    args = ap.parse_args()
    runners = args.runners.split(",")
    if "flink" in runners:
        subprocess.run(["bash", str(FLINK), "start"], check=True)
    tmp = tempfile.mkdtemp(prefix="engine-bench-")
    pages = fetch_pages(tmp)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        inp = os.path.join(tmp, f"corpus-{n}.jsonl")
        docs = corpus(pages, n)
        with open(inp, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        row = {"docs": n}
        for runner in runners:
            for rep in range(1, args.repeat + 1):
                out = os.path.join(tmp, f"out-{runner}-{n}" + (f"-r{rep}" if rep > 1 else ""))
                if runner == "flink" and rep > 1:  # a fresh cluster, as for the first run
                    subprocess.run(["bash", str(FLINK), "stop"], check=True)
                    subprocess.run(["bash", str(FLINK), "start"], check=True)
                res = run_job(runner, inp, out, args.es_url, args.workers, tuple(args.flink_args.split()))
                res["docs_per_s"] = round(n / res["wall_s"], 2)
                res["quality"] = quality(out, docs)
                if rep == 1:
                    row[runner] = res
                else:
                    first = os.path.join(tmp, f"out-{runner}-{n}")
                    res["rows_against_first_run"] = {t: compare_rows(first, out, t)
                                                     for t in ("duplicates", "groups", "unit_matches")}
                    row.setdefault(f"{runner}_repeats", []).append(res)
                print(f"{n:>6} docs  {runner:<6} run {rep} wall {res['wall_s']:>7.1f} s  {res['docs_per_s']:>6.2f} docs/s  "
                      f"peak {res['peak_mb']:>6} MB (cluster idle {res['idle_cluster_mb']} MB)  "
                      f"pairs {res['duplicate_pairs']}  {res['peak_by_process_mb']}"
                      + (f"  against run 1: {res['rows_against_first_run']}" if rep > 1 else ""), flush=True)
        if len(runners) == 2:
            a, b = (os.path.join(tmp, f"out-{r}-{n}") for r in runners)
            row["same_tables"] = {t: table_bytes(a, t) == table_bytes(b, t) for t in ("duplicates", "groups", "unit_matches")}
            row["rows_apart_from_run_id"] = {t: compare_rows(a, b, t) for t in ("duplicates", "groups", "unit_matches")}
            row["flink_over_direct_wall"] = round(row["flink"]["wall_s"] / row["direct"]["wall_s"], 2)
            row["flink_over_direct_peak"] = round(row["flink"]["peak_mb"] / row["direct"]["peak_mb"], 2)
            print(f"{n:>6} docs  same tables: {row['same_tables']}  rows: {row['rows_apart_from_run_id']}  flink/direct wall {row['flink_over_direct_wall']}, "
                  f"peak {row['flink_over_direct_peak']}", flush=True)
        results.append(row)
    layout = {"taskmanagers": int(os.environ.get("FLINK_TASKMANAGERS", 2)), "slots": int(os.environ.get("FLINK_SLOTS", 1)),
              "flink_args": args.flink_args}
    write_result({"benchmark": "engine", "results": results, "workers": args.workers, "flink_layout": layout,
                  "repeat": args.repeat, "outputs": tmp,
                  "note": "one run per size and runner on a shared 2-core machine: upper bounds"}, args.out)


if __name__ == "__main__":
    main()
