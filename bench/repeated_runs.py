"""The launcher's exit code over many runs in a row (issue 25): a scheduler reads a run's success from
its exit code, so a job that finished its work must exit 0 every time.

    python bench/repeated_runs.py --runs 20 --out bench/results/repeated-runs.json

Runs `python -m pipelines.dedup` on the demo corpus (the same alias every time, so each run also
takes and releases the lease and switches the alias) as a fresh process per run, with Python's fault
handler on: an abort prints every thread's stack, which is kept in the result. Reports each run's exit
code and wall time, and any run whose stderr has "terminate called" or a fault handler dump.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_result  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--input", default=os.path.join(REPO, "demo", "corpus.jsonl"))
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    index = f"bench-exit-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                cmd = [sys.executable, "-m", "pipelines.dedup", "--input", args.input, "--output",
                       os.path.join(tmp, "out"), "--es_url", args.es_url, "--es_index", index]
                start = time.perf_counter()
                done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - start
                aborted = "terminate called" in done.stderr or "Fatal Python error" in done.stderr
                runs.append({"run": i + 1, "exit": done.returncode, "seconds": round(wall, 1),
                             "abort_text": done.stderr[-4000:] if aborted or done.returncode else None})
                print(f"run {i + 1}/{args.runs}: exit {done.returncode} in {wall:.0f} s"
                      + (" (abort text in stderr)" if aborted else ""), flush=True)
    finally:
        from elasticsearch import Elasticsearch
        Elasticsearch(args.es_url).indices.delete(index=f"{index}*", ignore_unavailable=True)
    result = {
        "runs": len(runs), "exit_codes": {str(c): sum(r["exit"] == c for r in runs) for c in {r["exit"] for r in runs}},
        "median_seconds": statistics.median(r["seconds"] for r in runs) if runs else None,
        "failed": [r for r in runs if r["exit"] != 0 or r["abort_text"]],
        "met": bool(runs) and all(r["exit"] == 0 and not r["abort_text"] for r in runs),
    }
    print({k: v for k, v in result.items() if k != "failed"})
    write_result(result, args.out)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
