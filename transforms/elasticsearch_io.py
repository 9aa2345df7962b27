"""Elasticsearch vector store: connection, versioned indices, bulk writes with dead letters, refresh.

    written = vectors | WriteToElasticsearch(es_config)      # .indexed (ids) and .dead_letter
    ready = written.indexed | RefreshIndex(es_config)        # singleton: count, after all writes

Indices: `EsConfig.index` is an alias. Vectors go to a physical index named after the alias, the
mapping version, the model and the index options (`physical_index`), so vectors of another model or
settings never mix; after a load the alias is pointed at that index in one atomic `_aliases` call.

Writes use the `index` op with deterministic `_id`s, so a retried bundle or a re-run overwrites
instead of duplicating. Transient failures (connection errors, timeouts, 429, 5xx) are retried with
exponential backoff; documents that Elasticsearch rejects for good go to the dead-letter output
with its error, and the rest of the batch is indexed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Iterable, Optional

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.records import DEAD_LETTER_TAG, ConfigError, as_list, dead_letter, in_global_window

_LOG = logging.getLogger(__name__)

INDEX_OPTION_TYPES = ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat")
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


@dataclasses.dataclass(frozen=True)
class EsConfig:
    """Where and how to reach Elasticsearch. Secrets are read from environment variables by name,
    on the worker, so they never travel in the pipeline graph or the logs."""

    url: str = "http://127.0.0.1:9200"
    index: str = "dedup-documents"             # the alias searched by users and later runs
    model: str = ""                            # part of the physical index name
    cloud_id: Optional[str] = None             # Elastic Cloud id, instead of url
    api_key_env: Optional[str] = None          # name of the env var holding an API key
    api_key_secret: Optional[str] = None       # or a Secret Manager version holding it
    username: Optional[str] = None
    password_env: Optional[str] = None         # name of the env var holding the password
    password_secret: Optional[str] = None      # or a Secret Manager version holding it
    ca_certs: Optional[str] = None
    verify_certs: bool = True
    request_timeout_s: float = 30.0
    index_options: str = "hnsw"
    max_retries: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    slot: str = ""                             # "a"/"b": the blue/green generation a job writes (resolve_target)

    def __post_init__(self):
        if self.index_options not in INDEX_OPTION_TYPES:
            raise ValueError(f"index_options must be one of {INDEX_OPTION_TYPES}, got {self.index_options!r}")
        if not self.cloud_id and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"Elasticsearch URL must start with http:// or https://, got {self.url!r}")
        if self.index != self.index.lower() or not self.index:
            raise ValueError(f"Elasticsearch index names are lower case and non-empty: {self.index!r}")

    @property
    def safe_url(self) -> str:
        """The URL for messages and logs: any user:password@ part is replaced by ***@."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        if "@" not in parts.netloc:
            return self.url
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))

    @property
    def physical_base(self) -> str:
        """The name shared by every generation of the index for this model and these settings."""
        key = hashlib.sha1(f"{MAPPING_VERSION}|{self.model}|{self.index_options}".encode()).hexdigest()[:8]
        return f"{self.index}-m{MAPPING_VERSION}-{key}"

    @property
    def physical_index(self) -> str:
        """The concrete index this config writes and searches: the base name, plus the slot if set."""
        return f"{self.physical_base}-{self.slot}" if self.slot else self.physical_base

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


MAPPING_VERSION = 2  # 2: run state per unit (settings, shingles, band keys, offsets, model hash)


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


QUANTIZED = ("int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat")
RESCORE_OVERSAMPLE = 3.0


def index_mapping(dims: int, index_options: str = "hnsw") -> dict:
    """Settings and mapping of a vector index: strict fields, cosine dense_vector, explicit index_options.

    Quantised types rescore `RESCORE_OVERSAMPLE` x k candidates with the float vectors, so the
    similarity floor and the reported cosine use exact scores (int4 without it: recall 0.81 here).
    """
    options: dict = {"type": index_options}
    if "hnsw" in index_options:
        options.update({"m": 16, "ef_construction": 100})
    if index_options in QUANTIZED:
        options["rescore_vector"] = {"oversample": RESCORE_OVERSAMPLE}
    return {
        # refresh_interval -1 during the bulk load; RefreshIndex restores it and refreshes.
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
        "mappings": {
            "dynamic": "strict",
            "_meta": {"mapping_version": MAPPING_VERSION},
            "properties": {
                "unit_id": {"type": "keyword"},
                "doc_id": {"type": "keyword"},
                "unit_type": {"type": "keyword"},
                "unit_index": {"type": "integer"},
                "title": {"type": "text"},
                "url": {"type": "keyword"},
                "lang": {"type": "keyword"},
                "content_hash": {"type": "keyword"},
                "model": {"type": "keyword"},
                "model_hash": {"type": "keyword"},
                "dims": {"type": "integer", "index": False},
                "run_id": {"type": "keyword"},
                "start": {"type": "integer", "index": False},
                "end": {"type": "integer", "index": False},
                "doc_chars": {"type": "integer", "index": False},
                # Run state for incremental runs: the model/MinHash settings the unit was processed
                # with, its MinHash band keys (searchable) and its shingle ids (stored only).
                "settings": {"type": "keyword"},
                "raw_hash": {"type": "keyword"},
                "bands": {"type": "keyword"},
                "shingles": {"type": "binary"},
                "vector": {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
                           "index_options": options},
            },
        },
    }


def ensure_index(client, index: str, dims: int, index_options: str = "hnsw") -> bool:
    """Creates the index if absent; True if created. Safe when several workers race to create it."""
    from elasticsearch import BadRequestError

    if client.indices.exists(index=index):
        return False
    body = index_mapping(dims, index_options)
    try:
        client.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
        return True
    except BadRequestError as exc:
        if "resource_already_exists_exception" in str(exc):
            return False
        raise


def point_alias(client, alias: str, physical: str) -> list[str]:
    """Atomically points `alias` at `physical` only; returns the indices it was removed from."""
    current = []
    if client.indices.exists_alias(name=alias):
        current = [name for name in client.indices.get_alias(name=alias) if name != physical]
    actions = [{"remove": {"index": name, "alias": alias}} for name in current]
    actions.append({"add": {"index": physical, "alias": alias}})
    client.indices.update_aliases(actions=actions)
    return current


SLOTS = ("a", "b")


def alias_target(client, alias: str) -> Optional[str]:
    """The one index behind `alias`, or None."""
    if not client.indices.exists_alias(name=alias):
        return None
    names = sorted(client.indices.get_alias(name=alias))
    return names[0] if names else None


def resolve_target(config: EsConfig, mode: str) -> tuple[EsConfig, str]:
    """Picks the physical index a job writes: (config with its slot, effective mode).

    `full`: the blue/green slot NOT behind the alias, emptied first (a crashed attempt or the
    generation before last), so the live index keeps serving until the job swaps the alias at its
    end. `incremental`: the slot behind the alias when it holds this model and these settings; when
    it does not (first run, another model), the run is a full build of a fresh slot.
    """
    client = config.client()
    try:
        live = alias_target(client, config.index)
        base = config.physical_base
        live_slot = live[len(base) + 1:] if live and live.startswith(base + "-") else None
        if mode == "incremental" and live_slot in SLOTS:
            return dataclasses.replace(config, slot=live_slot), "incremental"
        slot = "b" if live_slot == "a" else "a"
        target = dataclasses.replace(config, slot=slot)
        client.indices.delete(index=target.physical_index, ignore_unavailable=True)
        return target, "full"
    finally:
        client.close()


def check_cluster(config: EsConfig) -> dict:
    """Pre-flight: fails fast with a clear message when the cluster is unreachable or refuses us."""
    from elastic_transport import TlsError
    from elasticsearch import ApiError, AuthenticationException, TransportError

    try:
        client = config.client()
    except RuntimeError as exc:  # a secret's environment variable is missing
        raise ConfigError(str(exc)) from None
    try:
        health = dict(client.cluster.health(wait_for_status="yellow", timeout="30s"))
        if client.indices.exists(index=config.index) and not client.indices.exists_alias(name=config.index):
            raise ConfigError(f"'{config.index}' is a concrete index, not an alias: choose another --es_index "
                              f"(vectors go to versioned indices such as {config.physical_index} behind it)")
        return health
    except AuthenticationException as exc:
        raise ConfigError(f"Elasticsearch at {config.safe_url} rejected the credentials ({exc.meta.status})") from None
    except TlsError as exc:
        causes, seen = [], exc  # the SSL reason sits in the exception chain (e.g. CERTIFICATE_VERIFY_FAILED)
        while seen is not None and len(causes) < 6:
            text = str(seen)
            if text and text not in causes:
                causes.append(text)
            seen = seen.__cause__ or seen.__context__
        cause = causes[-1][:400].replace(config.url, config.safe_url)
        raise ConfigError(f"TLS to Elasticsearch at {config.safe_url} failed ({cause}). If the cluster's "
                          f"certificate comes from a private CA, pass --es_ca_certs with the CA file; "
                          f"verification stays on by default") from None
    except (TransportError, ApiError) as exc:
        detail = str(exc).replace(config.url, config.safe_url)
        raise ConfigError(f"Elasticsearch at {config.safe_url} is not reachable or not healthy: "
                           f"{type(exc).__name__}: {detail}") from None
    finally:
        client.close()


def document_id(doc_id: str, unit_type: str = "document", unit_index: int = 0) -> str:
    """Deterministic Elasticsearch _id of one unit's vector.

    It hashes the unit's identity (document id, unit type, index), not its text: a document whose
    text changed overwrites its old vector instead of leaving a stale one beside it. The text's
    hash is stored in `content_hash`, so unchanged units can be recognised. (The model is part of
    the physical index name, so it need not be part of the id.)
    """
    return hashlib.sha1(f"{unit_type}\x1f{doc_id}\x1f{unit_index}".encode("utf-8")).hexdigest()


SOURCE_FIELDS = ("unit_id", "doc_id", "unit_type", "unit_index", "title", "url", "lang", "content_hash",
                 "model", "model_hash", "dims", "run_id", "start", "end", "doc_chars", "settings", "raw_hash", "bands",
                 "shingles", "vector")


def to_action(record: dict, index: str) -> dict:
    """Embedding record -> bulk `index` action with a deterministic _id (doc_id defaults to id)."""
    source = {k: record[k] for k in SOURCE_FIELDS if record.get(k) is not None}
    if "vector" in source:  # float32 in flight; JSON needs a list
        source["vector"] = as_list(source["vector"])
        source.setdefault("dims", len(source["vector"]))
    source.setdefault("doc_id", record["id"])
    source.setdefault("unit_id", record["id"])
    source.setdefault("unit_type", "document")
    return {"_op_type": "index", "_index": index,
            "_id": document_id(source["doc_id"], source["unit_type"], int(source.get("unit_index", 0))),
            "_source": source}


def approx_source_bytes(source: dict) -> int:
    """Cheap estimate of a document's JSON size (a float of a vector serialises to ~20 bytes),
    for batching by bytes without serialising every document twice."""
    size = 2
    for key, value in source.items():
        size += len(key) + 4
        size += 20 * len(value) if isinstance(value, (list, np.ndarray)) else len(str(value)) + 2
    return size


def _is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUS


class _BulkWriteFn(beam.DoFn):
    """Embedding dict -> indexed doc id; rejected ones -> DeadLetter. Batches by count and bytes."""

    def __init__(self, config: EsConfig, batch_size: int, batch_bytes: int):
        self.config = config
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.indexed = Metrics.counter("es_write", "indexed")
        self.failed = Metrics.counter("es_write", "failed")
        self.retries = Metrics.counter("es_write", "retries")
        self.bytes = Metrics.counter("es_write", "bytes")
        self.latency = Metrics.distribution("es_write", "bulk_latency_ms")

    def setup(self):
        from concurrent.futures import ThreadPoolExecutor

        self.client = self.config.client()
        self._ensured = False
        # One request in flight while the next batch is built: Elasticsearch indexes on its cores
        # while this worker parses and serialises. The bundle only finishes once all are answered.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="es-bulk")

    def start_bundle(self):
        self.buffer: list[tuple[dict, dict]] = []
        self.buffer_bytes = 0
        self._in_flight = None

    def process(self, record: dict):
        action = to_action(record, self.config.physical_index)
        size = approx_source_bytes(action["_source"])
        self.buffer.append((record, action))
        self.buffer_bytes += size
        if len(self.buffer) >= self.batch_size or self.buffer_bytes >= self.batch_bytes:
            yield from self._flush()

    def finish_bundle(self):
        yield from in_global_window([*self._flush(), *self._collect()])

    def _flush(self) -> Iterable:
        if not self.buffer:
            return
        batch, self.buffer, self.buffer_bytes = self.buffer, [], 0
        if not self._ensured:
            dims = next((len(a["_source"]["vector"]) for _, a in batch if "vector" in a["_source"]), None)
            if dims:
                ensure_index(self.client, self.config.physical_index, dims, self.config.index_options)
                self._ensured = True
        yield from self._collect()
        stats = {"indexed": 0, "failed": 0, "retries": 0, "bytes": 0, "latency_ms": []}
        self._in_flight = (self._sender.submit(lambda: list(self._send_with_retries(batch, stats))), stats)

    def _collect(self) -> Iterable:
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
        """Runs in the sender thread: Beam metrics are counted into `stats` and reported by _collect."""
        from elasticsearch import ConnectionError as EsConnectionError, ConnectionTimeout
        from elasticsearch import helpers

        pending = batch
        delay = self.config.initial_backoff_s
        for attempt in range(self.config.max_retries + 1):
            retry: list = []
            started = time.monotonic()
            try:
                results = list(helpers.streaming_bulk(
                    self.client, (a for _, a in pending), raise_on_error=False, raise_on_exception=False,
                    max_retries=0, chunk_size=len(pending), max_chunk_bytes=max(self.batch_bytes * 2, 1 << 20)))
            except (EsConnectionError, ConnectionTimeout) as exc:
                if attempt == self.config.max_retries:
                    raise RuntimeError(f"Elasticsearch bulk failed after {attempt} retries: {exc}") from exc
                _LOG.warning("bulk request failed (%s); retry %d in %.1f s", type(exc).__name__, attempt + 1, delay)
                stats["retries"] += 1
                time.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff_s)
                continue
            stats["latency_ms"].append(int((time.monotonic() - started) * 1000))
            for (record, action), (ok, item) in zip(pending, results):
                info = next(iter(item.values()))
                if ok:
                    stats["indexed"] += 1
                    stats["bytes"] += approx_source_bytes(action["_source"])
                    yield record["id"]
                elif _is_transient(int(info.get("status", 0))) or info.get("status") == "N/A":
                    retry.append((record, action))
                else:
                    stats["failed"] += 1
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "es_write", "rejected_by_elasticsearch", source=record.get("source"),
                        record_id=record["id"], detail=json.dumps(info.get("error"), default=str)[:2000]))
            if not retry:
                return
            if attempt == self.config.max_retries:
                for record, _ in retry:
                    stats["failed"] += 1
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "es_write", "retries_exhausted", record_id=record["id"],
                        detail=f"still failing after {attempt} retries"))
                return
            stats["retries"] += len(retry)
            _LOG.warning("%d documents got a transient error; retry %d in %.1f s", len(retry), attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, self.config.max_backoff_s)
            pending = retry

    def teardown(self):
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.shutdown(wait=True)
        client = getattr(self, "client", None)
        if client is not None:
            client.close()


class WriteToElasticsearch(beam.PTransform):
    """Embedding dict -> tagged `indexed` (doc ids) and `dead_letter` (DeadLetter dicts)."""

    def __init__(self, config: EsConfig, *, batch_size: int = 500, batch_bytes: int = 8 << 20):
        super().__init__()
        self.config = config
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    def expand(self, records):
        return records | "BulkIndex" >> beam.ParDo(
            _BulkWriteFn(self.config, self.batch_size, self.batch_bytes)).with_outputs(
                DEAD_LETTER_TAG, main="indexed")


class RefreshIndex(beam.PTransform):
    """PCollection (anything) -> singleton count, emitted after the index was refreshed (and, with
    `point=True`, the alias pointed at it). Use it as a side input to make searches wait until every
    write is visible. The job points the alias only at its very end (PointAlias).

    `merge_segments` > 0: the index is then force-merged to at most that many segments (a fresh,
    bulk-loaded index, read-only from here on: each segment holds its own HNSW graph and a kNN query
    searches every one, so fewer segments make every later query cheaper).
    """

    def __init__(self, config: EsConfig, point: bool = True, merge_segments: int = 0):
        super().__init__()
        self.config = config
        self.point = point
        self.merge_segments = merge_segments

    def expand(self, written):
        config = self.config

        point, merge_segments = self.point, self.merge_segments

        def refresh(count: int) -> int:
            client = config.client()
            physical = config.physical_index
            try:
                if client.indices.exists(index=physical):
                    client.indices.put_settings(index=physical, settings={"index": {"refresh_interval": None}})
                    client.indices.refresh(index=physical)
                    if merge_segments > 0:
                        started = time.monotonic()
                        # A merge of a large index takes minutes: a long timeout, no retry mid-merge.
                        client.options(request_timeout=3600, max_retries=0).indices.forcemerge(
                            index=physical, max_num_segments=merge_segments)
                        client.indices.refresh(index=physical)
                        _LOG.info("force-merged %s to %d segment(s) in %.1f s", physical, merge_segments,
                                  time.monotonic() - started)
                    if point:
                        replaced = point_alias(client, config.index, physical)
                        if replaced:
                            _LOG.info("alias %s moved from %s to %s", config.index, replaced, physical)
            finally:
                client.close()
            return count

        return (written
                | "CountWritten" >> beam.combiners.Count.Globally()
                | "Refresh" >> beam.Map(refresh))


class PointAlias(beam.PTransform):
    """PBegin -> singleton physical index name: points the alias at the job's index once every
    PCollection in `after` is complete (the job's last outputs), so readers switch in one step."""

    def __init__(self, config: EsConfig, after: list):
        super().__init__()
        self.config = config
        self.after = after

    def expand(self, pbegin):
        config = self.config
        done = [pc | f"Done{i}" >> beam.combiners.Count.Globally() for i, pc in enumerate(self.after)]

        def point(_, *counts):
            client = config.client()
            try:
                if client.indices.exists(index=config.physical_index):
                    client.indices.refresh(index=config.physical_index)
                    replaced = point_alias(client, config.index, config.physical_index)
                    _LOG.info("alias %s now on %s (was %s)", config.index, config.physical_index, replaced or "-")
            finally:
                client.close()
            return config.physical_index

        return (pbegin | "Start" >> beam.Create([None])
                | "Point" >> beam.Map(point, *[beam.pvalue.AsSingleton(d) for d in done]))
