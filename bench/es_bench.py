"""Elasticsearch benchmark: ANN recall of the kNN stage per index_options against the exact
reference, and bulk throughput of the Beam write stage against bare `helpers.bulk`.

    python bench/es_bench.py --es_url http://127.0.0.1:9200 --out bench/results/es.json

Vectors: all-MiniLM-L6-v2 embeddings of the real Spanish sentences of STS-B es (../shared/data)
plus word-dropped copies of a third of them (planted near-duplicates), >= 20k in all.
Recall = |pairs found by the Beam kNN stage| / |pairs of the exact top-k above the cosine floor|.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
from elasticsearch import Elasticsearch, helpers  # noqa: E402

from pipelines.runner import OfflineDirectRunner  # noqa: E402
from transforms.io.elasticsearch_store import (INDEX_OPTION_TYPES, EsConfig, RefreshIndex, WriteToElasticsearch,  # noqa: E402
                                         ensure_index, to_action)
from transforms.signals.embed import SentenceTransformerHandler  # noqa: E402
from transforms.matching.knn import KnnDuplicates  # noqa: E402
from transforms.matching.vector_memory import exact_neighbours  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def texts(min_count: int, seed: int = 0) -> list[str]:
    base = os.path.join(REPO, "..", "shared", "data", "stsb-es")
    sentences = set()
    for name in ("stsb-es-train.csv", "stsb-es-dev.csv"):
        with open(os.path.join(base, name), encoding="utf-8") as f:
            for row in csv.reader(f):
                sentences.update(row[:2])
    sentences = sorted(sentences)
    rng = random.Random(seed)
    copies = []
    for s in rng.sample(sentences, len(sentences) // 3):
        words = s.split()
        if len(words) > 6:
            drop = rng.randrange(len(words))
            copies.append(" ".join(words[:drop] + words[drop + 1:]))
    out = sentences + copies
    while len(out) < min_count:  # pad with shuffled-word variants if the data is smaller than asked
        words = rng.choice(sentences).split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def embed(all_texts: list[str], cache: str) -> np.ndarray:
    if os.path.exists(cache):
        data = np.load(cache)
        if data.shape[0] == len(all_texts):
            return data
    model = SentenceTransformerHandler().load_model()
    start = time.perf_counter()
    vectors = model.encode(all_texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"embedded {len(all_texts)} texts in {time.perf_counter() - start:.0f} s")
    np.save(cache, vectors.astype(np.float32))
    return vectors.astype(np.float32)


def write_jsonl(path: str, recs: list[dict]) -> None:
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def read_jsonl(p, path, label):
    return p | f"Read{label}" >> beam.io.ReadFromText(path) | f"Parse{label}" >> beam.Map(json.loads)


def beam_knn_pairs(config: EsConfig, path: str, k: int, floor: float, num_candidates: int) -> set:
    out = path + ".pairs"
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        ready = p | "Ready" >> beam.Create([0])
        pairs = read_jsonl(p, path, "Vectors") | KnnDuplicates(config, ready=ready, k=k, min_cosine=floor,
                                                                 num_candidates=num_candidates)
        _ = (pairs | beam.Map(lambda r: f"{r['doc_a']}\t{r['doc_b']}")
             | beam.io.WriteToText(out, shard_name_template="", num_shards=1))
    with open(out) as f:
        return {tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()}


def bare_bulk(client, index: str, recs: list[dict], dims: int) -> float:
    client.indices.delete(index=index, ignore_unavailable=True)
    ensure_index(client, index, dims)
    start = time.perf_counter()
    ok, errors = helpers.bulk(client, (to_action(r, index) for r in recs), chunk_size=500,
                              max_chunk_bytes=8 << 20, raise_on_error=False)
    client.indices.refresh(index=index)
    elapsed = time.perf_counter() - start
    assert ok == len(recs) and not errors, errors
    return len(recs) / elapsed


def beam_bulk(client, config: EsConfig, path: str, n: int) -> float:
    client.indices.delete(index=config.physical_index, ignore_unavailable=True)
    start = time.perf_counter()
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        written = read_jsonl(p, path, "Docs") | WriteToElasticsearch(config, batch_size=500)
        _ = written.indexed | RefreshIndex(config)
    elapsed = time.perf_counter() - start
    assert client.count(index=config.physical_index)["count"] == n
    return n / elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--vectors", type=int, default=20000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--num_candidates", type=int, default=100)
    ap.add_argument("--cosine", type=float, default=0.85)
    ap.add_argument("--options", default=",".join(INDEX_OPTION_TYPES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "es.json"))
    args = ap.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    client = Elasticsearch(args.es_url, request_timeout=120)
    all_texts = texts(args.vectors)
    vectors = embed(all_texts, os.path.join(tempfile.gettempdir(), f"es-bench-{len(all_texts)}.npy"))
    ids = [f"s{i:06d}" for i in range(len(all_texts))]
    recs = [{"id": i, "vector": v.tolist(), "model": "all-MiniLM-L6-v2"} for i, v in zip(ids, vectors)]
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cores": os.cpu_count(), "vectors": len(recs),
              "dims": int(vectors.shape[1]), "k": args.k, "num_candidates": args.num_candidates,
              "cosine_floor": args.cosine, "recall": {}, "bulk": {}}
    start = time.perf_counter()
    exact = set(exact_neighbours(ids, vectors, k=args.k, min_cosine=args.cosine))
    print(f"exact reference: {len(exact)} pairs in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vectors.jsonl")
        write_jsonl(path, recs)
        for option in args.options.split(","):
            config = EsConfig(url=args.es_url, index=f"bench-ann-{option.replace('_', '-')}", index_options=option)
            client.indices.delete(index=config.physical_index, ignore_unavailable=True)
            t0 = time.perf_counter()
            ensure_index(client, config.physical_index, int(vectors.shape[1]), option)
            helpers.bulk(client, (to_action(r, config.physical_index) for r in recs), chunk_size=500)
            client.indices.put_settings(index=config.physical_index, settings={"index": {"refresh_interval": None}})
            client.indices.refresh(index=config.physical_index)
            t1 = time.perf_counter()
            found = beam_knn_pairs(config, path, args.k, args.cosine, args.num_candidates)
            t2 = time.perf_counter()
            hit = len(found & exact)
            size_mb = client.indices.stats(index=config.physical_index)["_all"]["primaries"]["store"]["size_in_bytes"] / 2**20
            result["recall"][option] = {"recall": round(hit / len(exact), 4), "pairs_found": len(found),
                                        "pairs_exact": len(exact), "false_pairs": len(found - exact),
                                        "index_s": round(t1 - t0, 1), "search_s": round(t2 - t1, 1),
                                        "queries_per_s": round(len(recs) / (t2 - t1)), "store_mb": round(size_mb, 1)}
            print(f"  {option:<10} recall {hit / len(exact):.4f}  index {t1 - t0:5.1f} s  search {t2 - t1:5.1f} s  "
                  f"store {size_mb:6.1f} MB")
            client.indices.delete(index=config.physical_index, ignore_unavailable=True)
        bare_rates, beam_rates = [], []
        config = EsConfig(url=args.es_url, index="bench-bulk-beam")
        for r in range(args.repeats):
            bare_rates.append(bare_bulk(client, "bench-bulk-bare", recs, int(vectors.shape[1])))
            beam_rates.append(beam_bulk(client, config, path, len(recs)))
            print(f"  bulk repeat {r + 1}: bare helpers.bulk {bare_rates[-1]:,.0f} docs/s, "
                  f"Beam WriteToElasticsearch {beam_rates[-1]:,.0f} docs/s")
        client.indices.delete(index="bench-bulk-bare", ignore_unavailable=True)
        client.indices.delete(index=config.physical_index, ignore_unavailable=True)
    result["bulk"] = {"bare_helpers_bulk_docs_per_s": round(statistics.median(bare_rates)),
                      "beam_write_docs_per_s": round(statistics.median(beam_rates)),
                      "runs": {"bare": [round(x) for x in bare_rates], "beam": [round(x) for x in beam_rates]}}
    result["bulk"]["ratio"] = round(statistics.median(beam_rates) / statistics.median(bare_rates), 3)
    print("\n| index_options | recall vs exact | index s | search s (Beam kNN stage) | store MB |\n|---|---|---|---|---|")
    for option, r in result["recall"].items():
        print(f"| {option} | {r['recall']:.4f} | {r['index_s']} | {r['search_s']} | {r['store_mb']} |")
    b = result["bulk"]
    print(f"\nbulk: bare helpers.bulk {b['bare_helpers_bulk_docs_per_s']:,} docs/s, Beam write stage "
          f"{b['beam_write_docs_per_s']:,} docs/s, ratio {b['ratio']:.2f} (target >= 0.8)")
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
