"""The draft-check API against a run's index: agreement with the job's tables, then latency under load.

    python bench/check_bench.py --run OUT --docs DOCS.jsonl --es_index ALIAS [--fresh PAGES.jsonl] [--words 1000] [--requests 60]
        [--concurrency 1,8] [--skip_agreement] [--skip_latency] [--compare_neighbourhoods N] [--out bench/results/check-api.json]

1. Agreement (in process, DraftChecker): every document of `--docs` checked as a draft with its own id
   returns exactly the documents the job paired it with (`OUT/duplicates/`), and for every reported
   pair, checking either side returns the other with the job's relation, granularity, method, matched
   units, and cosine, Jaccard, margin and both coverages within 1.5e-6 (the job rounds to 6 decimals; a
   vector may differ from the indexed one in its last bit).
2. Latency (the real server: `python -m service` under uvicorn on 127.0.0.1, over HTTP): drafts of
   ~`--words` words of three kinds (`new`: paragraphs of pages not in the index, `--fresh`; `copy`: one
   indexed page followed by such paragraphs; `mixed`: paragraphs of ~20 random indexed pages, the worst
   case: dozens of matching documents), each sent once per level of `--concurrency` (threads, one
   connection each). Reported: p50/p95 of the client-side request time and of the server's own
   `search` (kNN, band keys, stored units, their neighbourhoods, scoring, roll-up), `embed` (encoding)
   and `embed_wait` (queued for the encoder) parts, and the index size in units. One machine for everything
   (server, encoder, Elasticsearch, clients): upper bounds.
3. `--compare_neighbourhoods N` (in process, sequential): the search part of N drafts per kind with the
   run's stored neighbourhoods (transforms/io/neighbourhood_store.py) and with them searched again,
   alternating draft by draft, and whether the answers are identical.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_result  # noqa: E402

TOLERANCE = 1.5e-6


def read_rows(run: str) -> list[dict]:
    from transforms.reporting.report import read_duplicates

    return read_duplicates(run)


def agreement(checker, rows: list[dict], docs: dict) -> dict:
    partners: dict = {}
    for r in rows:
        partners.setdefault(r["doc_a"], set()).add(r["doc_b"])
        partners.setdefault(r["doc_b"], set()).add(r["doc_a"])
    answers, set_diffs, extra, missing = {}, [], 0, 0
    for doc_id, d in docs.items():
        res = checker.check(d["text"], title=d.get("title"), url=d.get("url"), lang=d.get("lang"), doc_id=doc_id)
        answers[doc_id] = {m["doc_id"]: m for m in res["matches"]}
        got, want = set(answers[doc_id]), partners.get(doc_id, set())
        if got != want:
            set_diffs.append({"doc": doc_id, "extra": sorted(got - want), "missing": sorted(want - got)})
            extra, missing = extra + len(got - want), missing + len(want - got)
    value_diffs, exact = [], 0
    for r in rows:
        for side, other in (("a", "b"), ("b", "a")):
            m = answers[r[f"doc_{side}"]].get(r[f"doc_{other}"])
            if m is None:
                continue
            diffs = {k: (want, got) for k, want, got in (
                ("relation", r["relation"], m["relation"]), ("granularity", r["granularity"], m["granularity"]),
                ("method", r["method"], m["method"]), ("matched_units", r["matched_units"], m["matched_units"]))
                if want != got}
            equal = True
            for k, want, got in (("cosine", r["cosine"], m["cosine"]), ("jaccard", r["jaccard"], m["jaccard"]),
                                 ("margin", r.get("margin"), m["margin"]),
                                 ("coverage_draft", r[f"coverage_{side}"], m["coverage_draft"]),
                                 ("coverage_document", r[f"coverage_{other}"], m["coverage_document"])):
                if (want is None) != (got is None) or (want is not None and abs(want - got) > TOLERANCE):
                    diffs[k] = (want, got)
                elif want != got:
                    equal = False
            if r["relation"] == "duplicate" and (m["group_id"], m["canonical_id"]) != (r["group_id"], r["canonical_id"]):
                diffs["group"] = ((r["group_id"], r["canonical_id"]), (m["group_id"], m["canonical_id"]))
            if diffs:
                value_diffs.append({"draft": r[f"doc_{side}"], "document": r[f"doc_{other}"], "diffs": diffs})
            exact += int(equal and not diffs)
    return {"documents_checked": len(docs), "pairs": len(rows), "pair_sides_checked": 2 * len(rows),
            "documents_with_other_partners": len(set_diffs), "extra_matches": extra, "missing_matches": missing,
            "pair_sides_differing": len(value_diffs), "pair_sides_bit_equal": exact,
            "examples": (set_diffs + value_diffs)[:10]}


def make_drafts(docs: list[dict], n: int, words: int, kind: str = "mixed", fresh: list[dict] = (), seed: int = 7) -> list[str]:
    """`n` drafts of ~`words` words. mixed: paragraphs of random indexed documents (each has matches);
    copy: one indexed document, then fresh paragraphs; new: fresh paragraphs only (pages not indexed)."""
    def paragraphs(ds):
        return [p for d in ds for p in d["text"].split("\n\n") if len(p.split()) >= 8]

    rng, indexed, unseen = random.Random(seed), paragraphs(docs), paragraphs(fresh)
    short = [d for d in docs if len(d["text"].split()) <= words]   # a copied page fits in the draft
    drafts = []
    for _ in range(n):
        picked = [rng.choice(short)["text"]] if kind == "copy" else []
        count = sum(len(p.split()) for p in picked)
        while count < words:
            p = rng.choice(indexed if kind == "mixed" else unseen)
            picked.append(p)
            count += len(p.split())
        drafts.append("\n\n".join(picked))
    return drafts


def pct(values, q):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))], 1) if values else None


def serve(es_url: str, alias: str, key: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NEAR_DUP_API_KEYS": key, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "service", "--es_url", es_url, "--es_index", alias, "--port", str(port),
                             "--log_level", "warning"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
        try:
            if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become healthy")


def load(base: str, key: str, drafts: list[str], concurrency: int) -> dict:
    import httpx

    results, lock, queue = [], threading.Lock(), list(enumerate(drafts))

    def worker():
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, text = queue.pop()
                started = time.monotonic()
                response = client.post("/v1/check", json={"text": text})
                took = (time.monotonic() - started) * 1000
                body = response.json()
                with lock:
                    results.append((response.status_code, took, body.get("timing_ms", {}), len(body.get("matches", []))))

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ok = [r for r in results if r[0] == 200]
    return {"concurrency": concurrency, "requests": len(results), "ok": len(ok), "wall_s": round(wall, 1),
            "requests_per_s": round(len(ok) / wall, 2) if wall else None,
            "request_ms": {"p50": pct([r[1] for r in ok], 50), "p95": pct([r[1] for r in ok], 95)},
            "search_ms": {"p50": pct([r[2]["search"] for r in ok], 50), "p95": pct([r[2]["search"] for r in ok], 95)},
            "embed_ms": {"p50": pct([r[2]["embed"] for r in ok], 50), "p95": pct([r[2]["embed"] for r in ok], 95)},
            "embed_wait_ms": {"p50": pct([r[2]["embed_wait"] for r in ok], 50), "p95": pct([r[2]["embed_wait"] for r in ok], 95)},
            "matches_median": statistics.median(r[3] for r in ok) if ok else None}


def compare_neighbourhoods(es_url: str, alias: str, drafts_by_kind: dict) -> list[dict]:
    """In process, sequential: the search part of each draft with the run's stored neighbourhoods and
    with every stored unit's neighbourhood searched again (as before they were stored), alternating
    draft by draft on two fresh checkers (each caches what it searched or read). Same drafts, same run."""
    import dataclasses

    from service.checker import DraftChecker
    from transforms.io.elasticsearch import EsConnection

    stored = DraftChecker(EsConnection(url=es_url), alias, state_ttl_s=3600.0)
    searching = DraftChecker(EsConnection(url=es_url), alias, state_ttl_s=3600.0)
    state = searching.state()
    searching._state = dataclasses.replace(state, run={**state.run, "neighbourhoods": None})
    stored.check(drafts_by_kind[next(iter(drafts_by_kind))][0])  # warm-up: model and shapes
    searching.check(drafts_by_kind[next(iter(drafts_by_kind))][0])
    rows = []
    for kind, drafts in drafts_by_kind.items():
        times = {"stored": [], "searched": []}
        counts, same = {"stored": [], "searched": []}, 0
        for text in drafts:
            answers = {}
            for name, checker in (("stored", stored), ("searched", searching)):
                result = checker.check(text)
                times[name].append(result["timing_ms"]["search"])
                counts[name].append(result["searched"]["neighbourhoods_searched"])
                answers[name] = result["matches"]
            same += answers["stored"] == answers["searched"]
        row = {"drafts": kind, "requests": len(drafts), "identical_answers": same,
               **{f"search_ms_{name}": {"p50": pct(t, 50), "p95": pct(t, 95)} for name, t in times.items()},
               "neighbourhood_searches_median": {n: statistics.median(c) for n, c in counts.items()}}
        row["p95_ratio_stored_to_searched"] = round(row["search_ms_stored"]["p95"] / row["search_ms_searched"]["p95"], 3)
        print(json.dumps(row))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="the run's --output (its duplicates/ table)")
    ap.add_argument("--docs", required=True, help="the run's input JSONL ({id, text, title, url})")
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--es_index", required=True, help="the run's --es_index (alias)")
    ap.add_argument("--words", type=int, default=1000, help="words per load-test draft")
    ap.add_argument("--requests", type=int, default=60, help="drafts per concurrency level")
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--kinds", default="new,copy,mixed", help="draft kinds (see make_drafts)")
    ap.add_argument("--fresh", default="", help="JSONL of pages NOT in the index (paragraphs of new and copy drafts)")
    ap.add_argument("--skip_agreement", action="store_true")
    ap.add_argument("--skip_latency", action="store_true")
    ap.add_argument("--compare_neighbourhoods", type=int, default=0,
                    help="N drafts per kind checked in process with the run's stored neighbourhoods and with "
                         "them searched again (the search part of each, same drafts)")
    ap.add_argument("--out", default="bench/results/check-api.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from elasticsearch import Elasticsearch

    from service.checker import DraftChecker
    from transforms.io.elasticsearch import EsConnection

    docs = {}
    for path in sorted(glob.glob(args.docs)):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    d = json.loads(line)
                    docs[d["id"]] = d
    es = Elasticsearch(args.es_url)
    units = es.count(index=args.es_index)["count"]
    result = {"index": args.es_index, "units_indexed": units, "documents": len(docs)}
    if not args.skip_agreement:
        checker = DraftChecker(EsConnection(url=args.es_url), args.es_index)
        started = time.monotonic()
        result["agreement"] = agreement(checker, read_rows(args.run), docs)
        result["agreement"]["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps({k: v for k, v in result["agreement"].items() if k != "examples"}))
        del checker
    if args.compare_neighbourhoods:
        fresh = [json.loads(line) for line in open(args.fresh, encoding="utf-8") if line.strip()] if args.fresh else []
        result["neighbourhoods"] = compare_neighbourhoods(args.es_url, args.es_index, {
            kind: make_drafts(list(docs.values()), args.compare_neighbourhoods, args.words, kind, fresh, seed=5)
            for kind in args.kinds.split(",") if kind == "mixed" or fresh})
    if args.skip_latency:
        write_result(result, args.out)
        return 0
    key = "bench-" + os.urandom(16).hex()
    proc, base = serve(args.es_url, args.es_index, key)
    try:
        fresh = [json.loads(line) for line in open(args.fresh, encoding="utf-8") if line.strip()] if args.fresh else []
        load(base, key, make_drafts(list(docs.values()), 3, args.words, "mixed"), 1)  # warm-up: shapes compiled
        result["latency"] = []
        for kind in args.kinds.split(","):
            if kind != "mixed" and not fresh:
                continue
            for i, level in enumerate(int(x) for x in args.concurrency.split(",")):
                # other drafts per level: the service caches stored units' neighbourhoods
                drafts = make_drafts(list(docs.values()), args.requests, args.words, kind, fresh, seed=11 + i)
                row = {"drafts": kind, "draft_words": statistics.median(len(d.split()) for d in drafts),
                       **load(base, key, drafts, level)}
                print(json.dumps(row))
                result["latency"].append(row)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    result["machine"] = {"cpus": os.cpu_count()}
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
