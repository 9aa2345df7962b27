"""The write transform under injected faults, the versioned alias, and secrets (live Elasticsearch)."""
import logging
from unittest import mock

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.elasticsearch import resolve_secret
from transforms.io.elasticsearch_store import EsConfig, RefreshIndex, WriteToElasticsearch
from transforms.matching.knn import KnnDuplicates
from transforms.matching.vector_memory import exact_neighbours

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def records(n, dims=8, seed=0, model="m"):
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, dims)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [{"id": f"d{i:03d}", "vector": v.tolist(), "model": model} for i, v in enumerate(vecs)]


def write(config, recs, batch_size=10):
    with TestPipeline() as p:
        out = p | beam.Create(recs) | WriteToElasticsearch(config, batch_size=batch_size)
        assert_that(out.indexed, equal_to([r["id"] for r in recs]), label="indexed")
        assert_that(out.dead_letter, equal_to([]), label="no_dead_letters")


def count(es_client, index):
    es_client.indices.refresh(index=index)
    return es_client.count(index=index)["count"]


def test_429_storm_is_retried_to_success(es_fault_proxy, es_client, es_index):
    from apache_beam.metrics.metric import MetricsFilter

    config = EsConfig(url=es_fault_proxy.url, index=es_index, initial_backoff_s=0.05, max_backoff_s=0.2)
    es_fault_proxy.fail(429, times=4)
    es_fault_proxy.fail(503, times=2)
    p = TestPipeline()
    out = p | beam.Create(records(30)) | WriteToElasticsearch(config, batch_size=10)
    assert_that(out.dead_letter, equal_to([]))
    result = p.run()
    result.wait_until_finish()
    assert es_fault_proxy.injected == 6
    assert count(es_client, config.physical_index) == 30
    metrics = {m.key.metric.name: m.committed
               for m in result.metrics().query(MetricsFilter().with_namespace("es_write"))["counters"]}
    assert metrics["indexed"] == 30 and metrics["retries"] >= 6 and metrics.get("failed", 0) == 0


def test_bulk_applied_but_answer_lost_is_retried_without_duplicates(es_fault_proxy, es_client, es_index):
    # The first two bulk requests reach Elasticsearch, then the connection dies before the answer:
    # the writer retries those batches, and deterministic _ids make the retry an overwrite.
    config = EsConfig(url=es_fault_proxy.url, index=es_index, initial_backoff_s=0.05, max_backoff_s=0.2)
    es_fault_proxy.drop_after_forward(times=2)
    write(config, records(40))
    assert es_fault_proxy.injected == 2 and es_fault_proxy.bulk_requests >= 6
    assert count(es_client, config.physical_index) == 40


def test_retries_exhausted_go_to_dead_letters_not_a_failed_job(es_fault_proxy, es_index):
    config = EsConfig(url=es_fault_proxy.url, index=es_index, max_retries=2, initial_backoff_s=0.01)
    es_fault_proxy.fail(429, times=50)
    with TestPipeline() as p:
        out = p | beam.Create(records(5)) | WriteToElasticsearch(config, batch_size=10)
        assert_that(out.dead_letter | beam.Map(lambda r: r["reason"]), equal_to(["retries_exhausted"] * 5))


def test_alias_moves_atomically_to_the_new_model_index(es_url, es_client, es_index):
    old = EsConfig(url=es_url, index=es_index, model="model-a")
    new = EsConfig(url=es_url, index=es_index, model="model-b")
    assert old.physical_index != new.physical_index
    for config, n in ((old, 10), (new, 7)):
        with TestPipeline() as p:
            out = p | beam.Create(records(n, model=config.model)) | WriteToElasticsearch(config)
            _ = out.indexed | RefreshIndex(config)
        assert list(es_client.indices.get_alias(name=es_index)) == [config.physical_index]
        assert es_client.count(index=es_index)["count"] == n  # the alias never mixes the two models
    assert es_client.count(index=old.physical_index)["count"] == 10  # the old index is kept for rollback


def test_knn_matches_the_exact_reference_and_excludes_same_document(es_url, es_client, es_index):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(60, 16)).astype(np.float32)
    recs = []
    for i, v in enumerate(base):
        for j in range(2):  # two near-identical units per document, and a near copy in another document
            w = v + rng.normal(scale=0.05, size=16)
            recs.append({"id": f"doc{i}-u{j}", "doc_id": f"doc{i}", "unit_index": j, "unit_type": "paragraph",
                         "vector": (w / np.linalg.norm(w)).tolist()})
        w = v + rng.normal(scale=0.05, size=16)
        recs.append({"id": f"copy{i}-u0", "doc_id": f"copy{i}", "unit_index": 0, "unit_type": "paragraph",
                     "vector": (w / np.linalg.norm(w)).tolist()})
    config = EsConfig(url=es_url, index=es_index)
    ids = [r["id"] for r in recs]
    matrix = np.array([r["vector"] for r in recs], dtype=np.float32)
    expected = exact_neighbours(ids, matrix, k=5, min_cosine=0.9, doc_ids=[r["doc_id"] for r in recs])
    assert expected and all(a.split("-")[0] != b.split("-")[0] for a, b in expected)
    with TestPipeline() as p:
        written = p | "Recs" >> beam.Create(recs) | WriteToElasticsearch(config)
        ready = written.indexed | RefreshIndex(config)
        pairs = p | "Query" >> beam.Create(recs) | KnnDuplicates(config, ready=ready, k=5, min_cosine=0.9)
        assert_that(pairs | beam.Map(lambda r: (r["doc_a"], r["doc_b"])), equal_to(sorted(expected)))


def test_secrets_come_from_env_or_secret_manager_and_are_never_logged(monkeypatch, caplog):
    monkeypatch.setenv("TEST_ES_KEY", "s3cr3t-from-env")
    assert resolve_secret("TEST_ES_KEY", None) == "s3cr3t-from-env"
    with pytest.raises(RuntimeError, match="MISSING_VAR is not set") as err:
        resolve_secret("MISSING_VAR", None)
    assert "s3cr3t" not in str(err.value)
    fake = mock.Mock()
    fake.return_value.access_secret_version.return_value.payload.data = b"s3cr3t-from-sm"
    with mock.patch("google.cloud.secretmanager.SecretManagerServiceClient", fake), caplog.at_level(logging.DEBUG):
        assert resolve_secret(None, "projects/p/secrets/es/versions/1") == "s3cr3t-from-sm"
        config = EsConfig(url="https://127.0.0.1:9", api_key_secret="projects/p/secrets/es/versions/1")
        client = config.client()
        client.close()
    fake.return_value.access_secret_version.assert_called_with(name="projects/p/secrets/es/versions/1")
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in caplog.text
