"""Elasticsearch really stopped in the middle of the write stage and started again: the write
completes through retries and the index holds exactly the expected documents (none lost, none twice)."""
import subprocess
import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.transforms.io.test_elasticsearch_faults import records
from transforms.io.elasticsearch_store import EsConfig, WriteToElasticsearch

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services" / "elasticsearch.sh"


def slow(record, seconds):
    time.sleep(seconds)  # spreads the 600 writes over ~30 s, so the restart lands in the middle
    return record


def test_write_survives_an_elasticsearch_restart(es_url, es_client, es_index):
    n = 600
    config = EsConfig(url=es_url, index=es_index, initial_backoff_s=0.5, max_backoff_s=4.0, max_retries=40,
                      request_timeout_s=10)
    events = {}

    def restart_once_writing_started():
        deadline = time.time() + 120
        while time.time() < deadline and "writing" not in events:
            try:
                if es_client.indices.exists(index=config.physical_index):
                    events["writing"] = time.time()
            except Exception:  # noqa: BLE001 - polling only
                pass
            time.sleep(0.1)
        subprocess.run(["bash", str(SCRIPT), "stop"], check=True, timeout=120, capture_output=True)
        events["stopped"] = time.time()
        time.sleep(3)
        subprocess.run(["bash", str(SCRIPT), "start"], check=True, timeout=300, capture_output=True)
        events["started"] = time.time()

    restarter = threading.Thread(target=restart_once_writing_started, daemon=True)
    restarter.start()
    p = TestPipeline()
    recs = records(n, seed=7)
    out = p | beam.Create(recs) | beam.Map(slow, 0.05) | WriteToElasticsearch(config, batch_size=20)
    assert_that(out.indexed, equal_to([r["id"] for r in recs]), label="all_indexed")
    assert_that(out.dead_letter, equal_to([]), label="no_dead_letters")
    result = p.run()
    result.wait_until_finish()
    restarter.join(timeout=300)
    finished = time.time()
    assert {"writing", "stopped", "started"} <= set(events), events
    assert events["writing"] < events["stopped"] < events["started"] < finished  # the outage was mid-write
    metrics = {m.key.metric.name: m.committed
               for m in result.metrics().query(MetricsFilter().with_namespace("es_write"))["counters"]}
    assert metrics["retries"] >= 1 and metrics.get("failed", 0) == 0, metrics
    es_client.indices.refresh(index=config.physical_index)
    assert es_client.count(index=config.physical_index)["count"] == n  # exactly once each
