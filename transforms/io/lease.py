"""A lease held in Elasticsearch: one writer per name at a time, expiring when its holder dies.

    lease = EsLease(connection, name="dedup-documents", holder={"run_id": "r1", "mode": "full"}, ttl_s=120)
    lease.acquire(wait_s=0)          # LeaseHeld (naming the holder) if another live run holds it
    with lease.kept_alive():         # a heartbeat thread renews it every ttl/4 while the job runs
        ...
    lease.release()

The lease is one document (`_id` = the name) in the index `LEASE_INDEX`. It is created with the
`create` op (atomic: of two runs, one wins); a lease whose `expires_at` has passed is taken over with
a compare-and-set on its sequence number, so two runs taking over the same expired lease cannot both
win. Renewal and release use the same compare-and-set: a run whose lease was taken over (it stalled
past its expiry) learns it at its next heartbeat (`lost` is set, a warning logged) instead of
deleting the new holder's lease. Times are the Elasticsearch node's epoch milliseconds where it
matters for ordering (`now_ms` uses the launcher's clock; keep clocks within ttl of each other).
"""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from typing import Optional

_LOG = logging.getLogger(__name__)

LEASE_INDEX = ".near-dup-leases"


class LeaseHeld(RuntimeError):
    """Another holder's lease is live. `.holder`: its document (run id, mode, host, started, expires)."""

    def __init__(self, name: str, holder: dict):
        self.name, self.holder = name, holder
        left = max(0, (holder.get("expires_at_ms", 0) - now_ms()) // 1000)
        super().__init__(
            f"another run holds the lease on {name!r}: run {holder.get('run_id')!r} ({holder.get('mode')}, "
            f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started')}, last heartbeat "
            f"{holder.get('heartbeat')}, expires in {left} s); wait for it, or pass --wait_for_lease SECONDS")


def now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


class EsLease:
    """A named lease for `holder` (a JSON-ready dict: run id, mode, ...) with a time to live."""

    def __init__(self, connection, name: str, holder: dict, ttl_s: float = 120.0, index: str = LEASE_INDEX):
        if ttl_s <= 0:
            raise ValueError(f"lease ttl must be > 0, got {ttl_s}")
        self.connection, self.name, self.index, self.ttl_s = connection, name, index, ttl_s
        self.holder = {**holder, "host": socket.gethostname(), "pid": _pid()}
        self.token = f"{self.holder['host']}:{self.holder['pid']}:{now_ms()}"
        self._seq: Optional[tuple[int, int]] = None  # (seq_no, primary_term) of our version
        self.lost = False

    def _document(self, started_ms: int) -> dict:
        now = now_ms()
        return {**self.holder, "token": self.token, "started": _iso(started_ms), "heartbeat": _iso(now),
                "expires_at_ms": now + int(self.ttl_s * 1000), "expires": _iso(now + int(self.ttl_s * 1000))}

    def _ensure_index(self, client) -> None:
        from elasticsearch import BadRequestError

        if client.indices.exists(index=self.index):
            return
        try:
            client.indices.create(index=self.index, settings={"number_of_shards": 1, "number_of_replicas": 0,
                                                              "hidden": True},
                                  mappings={"dynamic": False, "properties": {"expires_at_ms": {"type": "long"}}})
        except BadRequestError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise

    def current(self, client) -> Optional[dict]:
        """The lease document now (with `_seq`), or None."""
        from elasticsearch import NotFoundError

        try:
            doc = client.get(index=self.index, id=self.name)
        except NotFoundError:
            return None
        return {**doc["_source"], "_seq": (doc["_seq_no"], doc["_primary_term"])}

    def try_acquire(self, client) -> Optional[dict]:
        """Takes the lease if free or expired: None; else the live holder's document."""
        from elasticsearch import ConflictError

        self._ensure_index(client)
        started = now_ms()
        try:
            r = client.create(index=self.index, id=self.name, document=self._document(started), refresh=True)
            self._seq = (r["_seq_no"], r["_primary_term"])
            return None
        except ConflictError:
            pass
        held = self.current(client)
        if held is None:  # released in between: try once more next round
            return {"run_id": "?", "expires_at_ms": now_ms()}
        if held.get("expires_at_ms", 0) > now_ms():
            return held
        try:  # expired: take it over, unless another run just did
            seq_no, term = held["_seq"]
            r = client.index(index=self.index, id=self.name, document=self._document(started), if_seq_no=seq_no,
                             if_primary_term=term, refresh=True)
        except ConflictError:
            return self.current(client) or {"run_id": "?", "expires_at_ms": now_ms()}
        _LOG.warning("lease on %s: took over an expired lease of run %s (last heartbeat %s)", self.name,
                     held.get("run_id"), held.get("heartbeat"))
        self._seq = (r["_seq_no"], r["_primary_term"])
        return None

    def acquire(self, wait_s: float = 0.0, poll_s: float = 2.0) -> None:
        """Takes the lease, waiting up to `wait_s` for a live one to be released or to expire;
        raises LeaseHeld (naming the holder) when it is still held."""
        client = self.connection.client()
        try:
            deadline = time.monotonic() + wait_s
            while True:
                held = self.try_acquire(client)
                if held is None:
                    _LOG.info("lease on %s taken by run %s (ttl %g s)", self.name, self.holder.get("run_id"),
                              self.ttl_s)
                    return
                if time.monotonic() >= deadline:
                    raise LeaseHeld(self.name, {k: v for k, v in held.items() if k != "_seq"})
                _LOG.info("lease on %s held by run %s; waiting", self.name, held.get("run_id"))
                time.sleep(min(poll_s, max(0.1, deadline - time.monotonic())))
        finally:
            client.close()

    def renew(self, client) -> bool:
        """Extends the lease; False (and `lost`) when another run took it over."""
        from elasticsearch import ConflictError, NotFoundError

        if self._seq is None or self.lost:
            return False
        held = self.current(client)
        if held is None or held.get("token") != self.token:
            self.lost = True
            return False
        try:
            r = client.index(index=self.index, id=self.name, document={**self._document(0), "started":
                             held.get("started")}, if_seq_no=self._seq[0], if_primary_term=self._seq[1], refresh=True)
        except (ConflictError, NotFoundError):
            self.lost = True
            return False
        self._seq = (r["_seq_no"], r["_primary_term"])
        return True

    def release(self) -> bool:
        """Deletes the lease if this holder still has it; True if deleted."""
        from elasticsearch import ConflictError, NotFoundError

        if self._seq is None:
            return False
        client = self.connection.client()
        try:
            client.delete(index=self.index, id=self.name, if_seq_no=self._seq[0], if_primary_term=self._seq[1],
                          refresh=True)
            _LOG.info("lease on %s released", self.name)
            return True
        except (ConflictError, NotFoundError):
            _LOG.warning("lease on %s was no longer ours at the end (taken over after it expired)", self.name)
            return False
        finally:
            self._seq = None
            client.close()

    @contextlib.contextmanager
    def kept_alive(self):
        """Renews the lease every ttl/4 from a daemon thread while the block runs."""
        stop = threading.Event()

        def beat():
            client = self.connection.client()
            try:
                while not stop.wait(self.ttl_s / 4):
                    try:
                        if not self.renew(client):
                            _LOG.warning("lease on %s lost: another run took it over", self.name)
                            return
                    except Exception as exc:  # noqa: BLE001 - a failed heartbeat is retried at the next beat
                        _LOG.warning("lease heartbeat on %s failed: %s", self.name, json.dumps(str(exc))[:300])
            finally:
                client.close()

        thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=30)


def _pid() -> int:
    import os

    return os.getpid()
