"""The Elasticsearch lease: one holder at a time, expiry, takeover by compare-and-set, heartbeats."""
import time
import uuid

import pytest

from transforms.io.elasticsearch import EsConnection
from transforms.io.lease import EsLease, LeaseHeld

pytestmark = pytest.mark.integration


@pytest.fixture()
def lease_index(es_client):
    name = f"test-leases-{uuid.uuid4().hex[:8]}"
    yield name
    es_client.indices.delete(index=name, ignore_unavailable=True)


def _lease(es_url, index, run_id, ttl=30.0):
    return EsLease(EsConnection(url=es_url), "corpus", {"run_id": run_id, "mode": "full"}, ttl_s=ttl, index=index)


def test_a_second_holder_is_refused_with_the_first_named_until_it_releases(es_url, lease_index):
    first, second = _lease(es_url, lease_index, "run-1"), _lease(es_url, lease_index, "run-2")
    first.acquire()
    with pytest.raises(LeaseHeld, match="run 'run-1' \\(full, host .*expires in \\d+ s") as err:
        second.acquire()
    assert err.value.holder["run_id"] == "run-1"
    started = time.monotonic()
    with pytest.raises(LeaseHeld):
        second.acquire(wait_s=1.0, poll_s=0.2)  # waits, then gives up
    assert time.monotonic() - started >= 1.0
    assert first.release()
    second.acquire()
    assert second.release()
    assert not second.release()  # nothing left to release


def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew_or_delete_it(es_url, es_client, lease_index):
    stale, fresh = _lease(es_url, lease_index, "crashed", ttl=1.0), _lease(es_url, lease_index, "rerun")
    stale.acquire()
    time.sleep(1.3)  # no heartbeat: the crashed run's lease expires
    fresh.acquire()
    client = EsConnection(url=es_url).client()
    try:
        assert not stale.renew(client) and stale.lost
    finally:
        client.close()
    assert not stale.release()
    assert es_client.get(index=lease_index, id="corpus")["_source"]["run_id"] == "rerun"
    assert fresh.release()


def test_heartbeats_keep_a_short_lease_alive_while_the_block_runs(es_url, lease_index):
    holder, other = _lease(es_url, lease_index, "long-job", ttl=1.0), _lease(es_url, lease_index, "other")
    holder.acquire()
    with holder.kept_alive():
        time.sleep(2.5)  # more than two ttls: alive only because it is renewed every ttl/4
        with pytest.raises(LeaseHeld):
            other.acquire()
    assert not holder.lost and holder.release()


def test_a_wait_ends_as_soon_as_the_holder_releases(es_url, lease_index):
    import threading

    first, second = _lease(es_url, lease_index, "run-1"), _lease(es_url, lease_index, "run-2")
    first.acquire()
    threading.Timer(1.0, first.release).start()
    started = time.monotonic()
    second.acquire(wait_s=20.0, poll_s=0.2)
    assert 0.9 <= time.monotonic() - started < 10
    assert second.release()
