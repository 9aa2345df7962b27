"""A generic Elasticsearch IO for Beam: connection, pre-flight, bulk writes with retries and dead letters.

Nothing here knows this job's mapping or ids: the caller gives the action of each record.

    conn = EsConnection(url="https://es.example.org:9243", api_key_env="ES_API_KEY")
    check_connection(conn)                                     # clear ConfigError before any work
    written = records | BulkWrite(conn, to_action=lambda r: {"_op_type": "index", "_index": "pages",
                                                             "_id": r["id"], "_source": r})
    written.written, written.dead_letter                       # the records' ids; DeadLetter dicts

Secrets are read on the worker from environment variables or Secret Manager versions named in the
connection, so they never travel in the pipeline graph or reach a log. Writes should use
deterministic `_id`s (a retried bundle or a re-run then overwrites instead of duplicating).
Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential backoff;
documents that Elasticsearch rejects for good go to `dead_letter` with its error, the rest of the
batch is written. One bulk request is in flight while the next batch is built.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Iterable, Optional

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.io.batching import BatchingDoFn
from transforms.records import DEAD_LETTER_TAG, ConfigError, dead_letter

_LOG = logging.getLogger(__name__)

TRANSIENT_STATUS = {429, 500, 502, 503, 504}


@dataclasses.dataclass(frozen=True, repr=False)
class EsConnection:
    """Where and how to reach Elasticsearch (no secret values: names of where to read them; a
    user:password in the URL is masked in repr() and messages)."""

    url: str = "http://127.0.0.1:9200"
    cloud_id: Optional[str] = None             # Elastic Cloud id, instead of url
    api_key_env: Optional[str] = None          # name of the env var holding an API key
    api_key_secret: Optional[str] = None       # or a Secret Manager version holding it
    username: Optional[str] = None
    password_env: Optional[str] = None         # name of the env var holding the password
    password_secret: Optional[str] = None      # or a Secret Manager version holding it
    ca_certs: Optional[str] = None
    verify_certs: bool = True
    request_timeout_s: float = 30.0
    max_retries: int = 6                       # of a bulk request (and of its transient item failures)
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def __post_init__(self):
        if not self.cloud_id and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"Elasticsearch URL must start with http:// or https://, got {self.url!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cloud_id or self.safe_url})"

    @property
    def safe_url(self) -> str:
        """The URL for messages and logs: any user:password@ part is replaced by ***@."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        if "@" not in parts.netloc:
            return self.url
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))

    def client(self):
        """A new Elasticsearch client (call once per DoFn instance, in setup())."""
        from elasticsearch import Elasticsearch

        kwargs = {"request_timeout": self.request_timeout_s, "verify_certs": self.verify_certs,
                  "retry_on_timeout": False, "max_retries": 0}
        if self.ca_certs:
            kwargs["ca_certs"] = self.ca_certs
        if self.api_key_env or self.api_key_secret:
            kwargs["api_key"] = resolve_secret(self.api_key_env, self.api_key_secret)
        elif self.username:
            password = resolve_secret(self.password_env, self.password_secret) \
                if (self.password_env or self.password_secret) else ""
            kwargs["basic_auth"] = (self.username, password)
        if self.cloud_id:
            return Elasticsearch(cloud_id=self.cloud_id, **kwargs)
        return Elasticsearch(self.url, **kwargs)


def resolve_secret(env_name: Optional[str], secret_version: Optional[str]) -> str:
    """A secret from an environment variable (by name) or a Secret Manager version
    (`projects/P/secrets/S/versions/V`). The value is returned, never logged or put in errors."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise RuntimeError(f"environment variable {env_name} is not set (it should hold an Elasticsearch secret)")
        return value
    if secret_version:
        from google.cloud import secretmanager

        try:
            response = secretmanager.SecretManagerServiceClient().access_secret_version(name=secret_version)
        except Exception as exc:  # noqa: BLE001 - report which secret, not the library's repr
            raise RuntimeError(f"cannot read Secret Manager secret {secret_version}: {type(exc).__name__}") from None
        return response.payload.data.decode("utf-8")
    raise RuntimeError("no secret source given")


def check_connection(conn: EsConnection, check: Optional[Callable] = None) -> dict:
    """Pre-flight: the cluster health, or a ConfigError saying what is wrong (unreachable, credentials,
    TLS, a missing secret). `check(client)`: the caller's own checks, run on the same client."""
    from elastic_transport import TlsError
    from elasticsearch import ApiError, AuthenticationException, TransportError

    try:
        client = conn.client()
    except RuntimeError as exc:  # a secret's environment variable is missing
        raise ConfigError(str(exc)) from None
    try:
        health = dict(client.cluster.health(wait_for_status="yellow", timeout="30s"))
        if check is not None:
            check(client)
        return health
    except AuthenticationException as exc:
        raise ConfigError(f"Elasticsearch at {conn.safe_url} rejected the credentials ({exc.meta.status})") from None
    except TlsError as exc:
        causes, seen = [], exc  # the SSL reason sits in the exception chain (e.g. CERTIFICATE_VERIFY_FAILED)
        while seen is not None and len(causes) < 6:
            text = str(seen)
            if text and text not in causes:
                causes.append(text)
            seen = seen.__cause__ or seen.__context__
        cause = causes[-1][:400].replace(conn.url, conn.safe_url)
        raise ConfigError(f"TLS to Elasticsearch at {conn.safe_url} failed ({cause}). If the cluster's "
                          f"certificate comes from a private CA, pass --es_ca_certs with the CA file; "
                          f"verification stays on by default") from None
    except (TransportError, ApiError) as exc:
        detail = str(exc).replace(conn.url, conn.safe_url)
        raise ConfigError(f"Elasticsearch at {conn.safe_url} is not reachable or not healthy: "
                          f"{type(exc).__name__}: {detail}") from None
    finally:
        client.close()


def msearch(client, index: str, bodies: list[dict]) -> list[dict]:
    """One _msearch request of `bodies` (search bodies) against `index` -> their responses, in order."""
    if not bodies:
        return []
    searches = []
    for body in bodies:
        searches += [{"index": index}, body]
    return client.msearch(searches=searches)["responses"]


def approx_source_bytes(source: dict) -> int:
    """Cheap estimate of a document's JSON size (a float of a vector serialises to ~20 bytes),
    for batching by bytes without serialising every document twice."""
    size = 2
    for key, value in source.items():
        size += len(key) + 4
        size += 20 * len(value) if isinstance(value, (list, np.ndarray)) else len(str(value)) + 2
    return size


def _is_transient(status) -> bool:
    return status == "N/A" or int(status or 0) in TRANSIENT_STATUS


class _BulkWriteFn(BatchingDoFn):
    """record -> its id when written; rejected ones -> DeadLetter. Batches by count and bytes."""

    def __init__(self, conn: EsConnection, to_action: Callable[[dict], dict], batch_size: int, batch_bytes: int,
                 before_first: Optional[Callable] = None, namespace: str = "es_write", id_field: str = "id"):
        super().__init__(conn, batch_size, batch_bytes)
        self.to_action, self.before_first, self.namespace, self.id_field = to_action, before_first, namespace, id_field
        self.indexed = Metrics.counter(namespace, "indexed")
        self.failed = Metrics.counter(namespace, "failed")
        self.retries = Metrics.counter(namespace, "retries")
        self.bytes = Metrics.counter(namespace, "bytes")
        self.latency = Metrics.distribution(namespace, "bulk_latency_ms")

    def setup(self):
        from concurrent.futures import ThreadPoolExecutor

        super().setup()
        self._prepared = self.before_first is None
        # One request in flight while the next batch is built: Elasticsearch indexes on its cores
        # while this worker parses and serialises. The bundle only finishes once all are answered.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="es-bulk")

    def start_bundle(self):
        super().start_bundle()
        self._in_flight = None

    def prepare(self, record: dict):
        action = self.to_action(record)
        return (record, action), approx_source_bytes(action["_source"])

    def handle(self, batch):
        if not self._prepared:  # e.g. create the index, from the first batch's documents
            self._prepared = bool(self.before_first(self.client, [a for _, a in batch]))
        yield from self.flush_outputs()
        stats = {"indexed": 0, "failed": 0, "retries": 0, "bytes": 0, "latency_ms": []}
        self._in_flight = (self._sender.submit(lambda: list(self._send_with_retries(batch, stats))), stats)

    def flush_outputs(self) -> Iterable:
        """Outputs of the request in flight (waits for it; re-raises its error); reports its metrics."""
        if self._in_flight is not None:
            (future, stats), self._in_flight = self._in_flight, None
            outputs = future.result()
            for name in ("indexed", "failed", "retries", "bytes"):
                if stats[name]:
                    getattr(self, name).inc(stats[name])
            for ms in stats["latency_ms"]:
                self.latency.update(ms)
            yield from outputs

    def _send_with_retries(self, batch, stats: dict):
        """Runs in the sender thread: Beam metrics are counted into `stats` and reported by flush_outputs."""
        from elasticsearch import ConnectionError as EsConnectionError, ConnectionTimeout
        from elasticsearch import helpers

        conn, pending, stage = self.connection, batch, self.namespace
        delay = conn.initial_backoff_s
        for attempt in range(conn.max_retries + 1):
            retry: list = []
            started = time.monotonic()
            try:
                results = list(helpers.streaming_bulk(
                    self.client, (a for _, a in pending), raise_on_error=False, raise_on_exception=False,
                    max_retries=0, chunk_size=len(pending), max_chunk_bytes=max(self.batch_bytes * 2, 1 << 20)))
            except (EsConnectionError, ConnectionTimeout) as exc:
                if attempt == conn.max_retries:
                    raise RuntimeError(f"Elasticsearch bulk failed after {attempt} retries: {exc}") from exc
                _LOG.warning("bulk request failed (%s); retry %d in %.1f s", type(exc).__name__, attempt + 1, delay)
                stats["retries"] += 1
                time.sleep(delay)
                delay = min(delay * 2, conn.max_backoff_s)
                continue
            stats["latency_ms"].append(int((time.monotonic() - started) * 1000))
            for (record, action), (ok, item) in zip(pending, results):
                info = next(iter(item.values()))
                if ok:
                    stats["indexed"] += 1
                    stats["bytes"] += approx_source_bytes(action["_source"])
                    yield record[self.id_field]
                elif _is_transient(info.get("status", 0)):
                    retry.append((record, action))
                else:
                    stats["failed"] += 1
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        stage, "rejected_by_elasticsearch", source=record.get("source"),
                        record_id=record[self.id_field], detail=json.dumps(info.get("error"), default=str)[:2000]))
            if not retry:
                return
            if attempt == conn.max_retries:
                for record, _ in retry:
                    stats["failed"] += 1
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        stage, "retries_exhausted", record_id=record[self.id_field],
                        detail=f"still failing after {attempt} retries"))
                return
            stats["retries"] += len(retry)
            _LOG.warning("%d documents got a transient error; retry %d in %.1f s", len(retry), attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, conn.max_backoff_s)
            pending = retry

    def teardown(self):
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.shutdown(wait=True)
        super().teardown()


class BulkWrite(beam.PTransform):
    """record dict -> tagged `written` (or `main_tag`: record[id_field] of every document written) and `dead_letter`.

    `to_action(record)`: its bulk action ({"_op_type", "_index", "_id", "_source"}); `before_first(client,
    actions)`: called with the first batch's actions until it returns true (create an index, say);
    `namespace`: of the metrics (indexed, failed, retries, bytes, bulk_latency_ms) and dead letters."""

    def __init__(self, conn: EsConnection, to_action: Callable[[dict], dict], *, batch_size: int = 500,
                 batch_bytes: int = 8 << 20, before_first: Optional[Callable] = None, namespace: str = "es_write",
                 id_field: str = "id", main_tag: str = "written"):
        super().__init__()
        self.fn = _BulkWriteFn(conn, to_action, batch_size, batch_bytes, before_first, namespace, id_field)
        self.main_tag = main_tag

    def expand(self, records):
        return records | "BulkIndex" >> beam.ParDo(self.fn).with_outputs(DEAD_LETTER_TAG, main=self.main_tag)
