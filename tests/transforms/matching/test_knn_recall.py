"""kNN search of the Beam stage on the live Elasticsearch against the exact reference, on real
sentence embeddings (STS-B es dev sentences and word-dropped copies of them): the approximate HNSW
search (passages; documents with --document_search approximate) keeps recall >= 0.98; the exact
document search returns the reference pairs whatever order the index was built in."""
import csv
import json
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.io.elasticsearch_store import EsConfig, RefreshIndex, WriteToElasticsearch
from transforms.signals.embed import SentenceTransformerHandler
from transforms.matching.knn import KnnDuplicates
from transforms.matching.vector_memory import exact_neighbours

pytestmark = pytest.mark.integration

FLOOR = 0.85


@pytest.fixture(scope="module")
def sentences(shared_data):
    """(ids, unit-length float32 vectors): ~4,500 sentences, a third of them with a copy missing one word."""
    with open(shared_data / "stsb-es" / "stsb-es-dev.csv", encoding="utf-8") as f:
        texts = sorted({s for row in csv.reader(f) for s in row[:2]})
    rng = random.Random(0)
    copies = []
    for s in rng.sample(texts, len(texts) // 3):
        words = s.split()
        drop = rng.randrange(len(words))
        copies.append(" ".join(words[:drop] + words[drop + 1:]))
    texts += copies
    vectors = SentenceTransformerHandler().load_model().encode(texts, batch_size=64, normalize_embeddings=True)
    return [f"s{i:05d}" for i in range(len(texts))], np.asarray(vectors, dtype=np.float32)


def _search(tmp_path, name, config, ids, vectors, order, **knn) -> set:
    """Index the vectors in `order`, search each one: {(doc_a, doc_b)}."""
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"id": ids[i], "vector": vectors[i].tolist()}) + "\n" for i in order))
    out = tmp_path / f"{name}-pairs"
    with TestPipeline() as p:
        recs = p | beam.io.ReadFromText(str(path)) | beam.Map(json.loads)
        ready = (recs | WriteToElasticsearch(config)).indexed | RefreshIndex(config)
        pairs = recs | KnnDuplicates(config, ready=ready, k=10, num_candidates=100, min_cosine=FLOOR, **knn)
        _ = (pairs | beam.Map(lambda r: f"{r['doc_a']}\t{r['doc_b']}")
             | beam.io.WriteToText(str(out), shard_name_template="", num_shards=1))
    return {tuple(line.split("\t")) for line in out.read_text().splitlines() if line}


def test_hnsw_knn_recall_against_exact_search(sentences, es_url, es_index, tmp_path):
    ids, vectors = sentences
    expected = set(exact_neighbours(ids, vectors, k=10, min_cosine=FLOOR))
    assert len(ids) > 3000 and len(expected) > 500
    config = EsConfig(url=es_url, index=es_index, index_options="hnsw")
    found = _search(tmp_path, "hnsw", config, ids, vectors, range(len(ids)), exact_documents=False)
    recall = len(found & expected) / len(expected)
    assert recall >= 0.98, f"recall {recall:.4f} ({len(found & expected)} of {len(expected)})"
    assert not found - expected or len(found - expected) <= 0.01 * len(found)


def test_exact_document_search_returns_the_reference_pairs_in_any_index_order(sentences, es_url, es_index,
                                                                                tmp_path):
    """The default document search compares every document (the `flat` doc_vector field): the pairs
    are the numpy reference's, and two indices built in opposite orders give the same pairs (HNSW
    graphs depend on insertion order: the reason two Flink runs at 20,000 pages differed)."""
    ids, vectors = sentences
    reference = exact_neighbours(ids, vectors, k=10, min_cosine=FLOOR)
    forward = _search(tmp_path, "forward", EsConfig(url=es_url, index=es_index), ids, vectors, range(len(ids)))
    backward = _search(tmp_path, "backward", EsConfig(url=es_url, index=f"{es_index}-rev"), ids, vectors,
                       range(len(ids) - 1, -1, -1))
    assert forward == backward
    # float32 sums in another order: a pair within 1e-5 of the floor may fall either side of it
    borderline = {p for p, cos in reference.items() if abs(cos - FLOOR) < 1e-5}
    assert forward - borderline == set(reference) - borderline, (
        f"{len(forward - set(reference))} extra, {len(set(reference) - forward)} missing")
