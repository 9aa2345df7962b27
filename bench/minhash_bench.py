"""MinHash stage benchmark: Beam signature throughput against the bare vectorised implementation,
and a 5,000-document boilerplate bucket. Prints a table and writes JSON.

    python bench/minhash_bench.py --docs 10000 --repeats 3 --out bench/results/minhash.json

Throughput is reported two ways, medians over the repeats: end-to-end on 3N documents (process and
worker start-up included), and steady (the marginal rate, 2N / (t(3N) - t(N)), without fixed costs).

Documents are ~500 words of real Spanish sentences (STS-B es, ../shared/data) shuffled into
articles; if that data is absent, the demo corpus is used. Baseline and Beam run the same work
(read JSONL, parse, shingle, sign) on the same file, both with 2 processes; medians are quoted.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipelines.runner import OfflineDirectRunner  # noqa: E402
from transforms.signals.lsh import MinHashDuplicates, MinHashSignatures  # noqa: E402
from transforms.signals.minhash import MinHasher, MinHashParams  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sentences() -> list[str]:
    path = os.path.join(REPO, "..", "shared", "data", "stsb-es", "stsb-es-train.csv")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return sorted({s for row in csv.reader(f) for s in row[:2]})
    with open(os.path.join(REPO, "demo", "corpus.jsonl"), encoding="utf-8") as f:
        return [s for line in f for s in json.loads(line)["text"].split(". ")]


def make_corpus(path: str, n_docs: int, words: int = 500, seed: int = 0) -> float:
    rng = random.Random(seed)
    pool = sentences()
    total_words = 0
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n_docs):
            parts, count = [], 0
            while count < words:
                s = rng.choice(pool)
                parts.append(s)
                count += len(s.split())
            total_words += count
            out.write(json.dumps({"id": f"d{i:06d}", "text": " ".join(parts)}, ensure_ascii=False) + "\n")
    return total_words / n_docs


_HASHER = None


def _sign_chunk(lines: list[str]) -> int:
    global _HASHER
    if _HASHER is None:
        _HASHER = MinHasher(MinHashParams())
    for line in lines:
        _HASHER.signature(json.loads(line)["text"])
    return len(lines)


def bare(path: str, processes: int) -> float:
    """Bare vectorised implementation: read, parse and sign with a process pool; returns seconds."""
    start = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    chunks = [lines[i:i + 500] for i in range(0, len(lines), 500)]
    with mp.get_context("fork").Pool(processes) as pool:
        sum(pool.map(_sign_chunk, chunks))
    return time.perf_counter() - start


def beam_stage(path: str, workers: int) -> float:
    """The Beam MinHashSignatures stage on the DirectRunner (multi_processing); returns seconds."""
    opts = PipelineOptions(["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
    start = time.perf_counter()
    with beam.Pipeline(runner=OfflineDirectRunner(), options=opts) as p:
        _ = (p | beam.io.ReadFromText(path) | beam.Map(json.loads)
             | MinHashSignatures(MinHashParams()) | beam.combiners.Count.Globally()
             | beam.Map(lambda c: print(f"    signed {c}", file=sys.stderr)))
    return time.perf_counter() - start


def boilerplate_bucket(n_docs: int = 5000) -> dict:
    """n documents that share a 400-word template and differ in 100 words: LSH must stay bounded."""
    rng = random.Random(1)
    template = " ".join(f"plantilla{i}" for i in range(400))
    units = [{"id": f"b{i:05d}", "text": template + " " + " ".join(f"u{rng.randrange(10**9)}" for _ in range(100))}
             for i in range(n_docs)]
    lsh = MinHashDuplicates(MinHashParams(), 0.8)
    tmp = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8")
    with tmp:
        tmp.writelines(json.dumps(u) + "\n" for u in units)
    start = time.perf_counter()
    # (beam.Create would bz2-compress the whole input into the graph: read it from a file instead)
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        out = p | beam.io.ReadFromText(tmp.name) | beam.Map(json.loads) | lsh
        _ = out["pairs"] | "CountPairs" >> beam.combiners.Count.Globally() | "P" >> beam.Map(
            lambda c: print(f"    verified pairs {c}", file=sys.stderr))
        _ = out["oversized"] | "CountOversized" >> beam.combiners.Count.Globally() | "O" >> beam.Map(
            lambda c: print(f"    oversized buckets {c}", file=sys.stderr))
    wall = time.perf_counter() - start
    os.unlink(tmp.name)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"docs": n_docs, "wall_s": round(wall, 1), "peak_rss_mb": round(rss_mb), "bands": lsh.bands,
            "rows": lsh.rows, "all_pairs_would_be": n_docs * (n_docs - 1) // 2}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "minhash.json"))
    args = ap.parse_args(argv)
    cores = os.cpu_count()
    print(f"machine: {cores} cores, load average {os.getloadavg()}")
    bucket = boilerplate_bucket()  # first, so the process's peak RSS is this stage's
    print(f"boilerplate bucket: {bucket}")
    with tempfile.TemporaryDirectory() as tmp:
        big = os.path.join(tmp, "docs3.jsonl")
        mean_words = make_corpus(big, 3 * args.docs)
        small = os.path.join(tmp, "docs1.jsonl")
        with open(big, encoding="utf-8") as f, open(small, "w", encoding="utf-8") as out:
            out.writelines(line for _, line in zip(range(args.docs), f))
        print(f"corpus: {args.docs} and {3 * args.docs} documents, {mean_words:.0f} words on average")
        runs = {"bare": [], "beam": []}
        for r in range(args.repeats):
            for name, fn in (("bare", bare), ("beam", beam_stage)):
                t1, t3 = fn(small, 2), fn(big, 2)
                runs[name].append({"n_s": t1, "3n_s": t3, "end_to_end": 3 * args.docs / t3,
                                   "steady": 2 * args.docs / (t3 - t1)})
            print(f"  repeat {r + 1}: " + ", ".join(
                f"{k} end-to-end {v[-1]['end_to_end']:,.0f} docs/s, steady {v[-1]['steady']:,.0f} docs/s"
                for k, v in runs.items()))

    def med(name, key):
        return statistics.median(x[key] for x in runs[name])

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cores": cores, "load_average": os.getloadavg(),
        "docs": [args.docs, 3 * args.docs], "mean_words": round(mean_words), "repeats": args.repeats,
        "bare_vectorised": {"end_to_end_docs_per_s": round(med("bare", "end_to_end")),
                            "steady_docs_per_s": round(med("bare", "steady"))},
        "beam_stage": {"end_to_end_docs_per_s": round(med("beam", "end_to_end")),
                       "steady_docs_per_s": round(med("beam", "steady"))},
        "runs": runs,
        "boilerplate_bucket": bucket,
    }
    result["ratio_steady"] = round(med("beam", "steady") / med("bare", "steady"), 3)
    result["ratio_end_to_end"] = round(med("beam", "end_to_end") / med("bare", "end_to_end"), 3)
    print("\n| stage (2 processes, ~500-word docs) | end-to-end docs/s (3N) | steady docs/s (3N - N) |")
    print("|---|---|---|")
    for name, label in (("bare_vectorised", "bare vectorised MinHasher, process pool"),
                        ("beam_stage", "Beam MinHashSignatures, DirectRunner multi_processing")):
        print(f"| {label} | {result[name]['end_to_end_docs_per_s']:,} | {result[name]['steady_docs_per_s']:,} |")
    print(f"ratio Beam / bare: steady {result['ratio_steady']:.2f}, end-to-end {result['ratio_end_to_end']:.2f} "
          f"(target >= 0.8); Beam steady >= 3,000 docs/s: {result['beam_stage']['steady_docs_per_s'] >= 3000}")
    print(f"boilerplate bucket: {bucket}")
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
