"""ANN recall of the Beam kNN stage on the live Elasticsearch against the exact reference,
on real sentence embeddings (STS-B es dev sentences and word-dropped copies of them)."""
import csv
import json
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.io.elasticsearch_store import EsConfig, RefreshIndex, WriteToElasticsearch
from transforms.signals.embed import SentenceTransformerHandler
from transforms.matching.knn import KnnDuplicates
from transforms.matching.vector_memory import exact_neighbours

pytestmark = pytest.mark.integration


def test_hnsw_knn_recall_against_exact_search(shared_data, es_url, es_index, tmp_path):
    with open(shared_data / "stsb-es" / "stsb-es-dev.csv", encoding="utf-8") as f:
        sentences = sorted({s for row in csv.reader(f) for s in row[:2]})
    rng = random.Random(0)
    copies = []
    for s in rng.sample(sentences, len(sentences) // 3):
        words = s.split()
        drop = rng.randrange(len(words))
        copies.append(" ".join(words[:drop] + words[drop + 1:]))
    texts = sentences + copies
    vectors = SentenceTransformerHandler().load_model().encode(texts, batch_size=64, normalize_embeddings=True)
    ids = [f"s{i:05d}" for i in range(len(texts))]
    expected = set(exact_neighbours(ids, vectors, k=10, min_cosine=0.85))
    assert len(texts) > 3000 and len(expected) > 500

    path = tmp_path / "vectors.jsonl"
    path.write_text("".join(json.dumps({"id": i, "vector": v.tolist()}) + "\n" for i, v in zip(ids, vectors)))
    out = tmp_path / "pairs"
    config = EsConfig(url=es_url, index=es_index, index_options="hnsw")
    with TestPipeline() as p:
        recs = p | beam.io.ReadFromText(str(path)) | beam.Map(json.loads)
        ready = (recs | WriteToElasticsearch(config)).indexed | RefreshIndex(config)
        pairs = recs | KnnDuplicates(config, ready=ready, k=10, num_candidates=100, min_cosine=0.85)
        _ = (pairs | beam.Map(lambda r: f"{r['doc_a']}\t{r['doc_b']}")
             | beam.io.WriteToText(str(out), shard_name_template="", num_shards=1))
    found = {tuple(line.split("\t")) for line in out.read_text().splitlines() if line}
    recall = len(found & expected) / len(expected)
    assert recall >= 0.98, f"recall {recall:.4f} ({len(found & expected)} of {len(expected)})"
    assert not found - expected or len(found - expected) <= 0.01 * len(found)
