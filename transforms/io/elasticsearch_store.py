"""This job's vector store on Elasticsearch: versioned indices, mapping, unit ids, blue/green slots.

    written = vectors | WriteToElasticsearch(es_config)      # .indexed (ids) and .dead_letter
    ready = written.indexed | RefreshIndex(es_config)        # singleton: count, after all writes

Built on the generic IO of transforms/io/elasticsearch.py (connection, bulk writes with retries and
dead letters). `EsConfig.index` is an alias. Vectors go to a physical index named after the alias,
the mapping version, the model and the index options (`physical_index`), so vectors of another model
or settings never mix; after a load the alias is pointed at that index in one atomic `_aliases`
call. Unit `_id`s are deterministic (`document_id`): a retried bundle or a re-run overwrites.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import warnings
from typing import Optional

import apache_beam as beam
from elasticsearch import ApiError, TransportError
from elasticsearch.exceptions import GeneralAvailabilityWarning

from transforms.io.elasticsearch import BulkWrite, EsConnection, check_connection
from transforms.records import ConfigError, as_list

_LOG = logging.getLogger(__name__)

INDEX_OPTION_TYPES = ("hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat")


@dataclasses.dataclass(frozen=True, repr=False)
class EsConfig(EsConnection):
    """The job's vector store: how to reach the cluster (the EsConnection fields), the alias, the
    model and index options (part of the physical index name) and the blue/green slot a job writes."""

    index: str = "dedup-documents"             # the alias searched by users and later runs
    model: str = ""                            # part of the physical index name
    index_options: str = "hnsw"
    slot: str = ""                             # "a"/"b": the blue/green generation a job writes (resolve_target)

    def __post_init__(self):
        super().__post_init__()
        if self.index_options not in INDEX_OPTION_TYPES:
            raise ValueError(f"index_options must be one of {INDEX_OPTION_TYPES}, got {self.index_options!r}")
        if self.index != self.index.lower() or not self.index:
            raise ValueError(f"Elasticsearch index names are lower case and non-empty: {self.index!r}")

    def __repr__(self) -> str:
        return f"EsConfig({self.cloud_id or self.safe_url}, index={self.physical_index})"

    @property
    def connection(self) -> EsConnection:
        """Only the connection (what the generic IO of transforms/io/elasticsearch.py takes)."""
        return EsConnection(**{f.name: getattr(self, f.name) for f in dataclasses.fields(EsConnection)})

    @property
    def physical_base(self) -> str:
        """The name shared by every generation of the index for this model and these settings."""
        key = hashlib.sha1(f"{MAPPING_VERSION}|{self.model}|{self.index_options}".encode()).hexdigest()[:8]
        return f"{self.index}-m{MAPPING_VERSION}-{key}"

    @property
    def physical_index(self) -> str:
        """The concrete index this config writes and searches: the base name, plus the slot if set."""
        return f"{self.physical_base}-{self.slot}" if self.slot else self.physical_base


MAPPING_VERSION = 4  # 2: run state per unit (settings, shingles, band keys, offsets, model hash); 3: document tokens;
#                     4: documents' vectors also in `doc_vector`, searched exactly (DOC_VECTOR_FIELD)
DOC_VECTOR_FIELD = "doc_vector"


QUANTIZED = ("int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat")
RESCORE_OVERSAMPLE = 3.0


def index_mapping(dims: int, index_options: str = "hnsw") -> dict:
    """Settings and mapping of a vector index: strict fields, cosine dense_vector, explicit index_options.

    Quantised types rescore `RESCORE_OVERSAMPLE` x k candidates with the float vectors, so the
    similarity floor and the reported cosine use exact scores (int4 without it: recall 0.81 here).
    Document units' vectors are indexed a second time in `doc_vector`, a `flat` field (every vector
    compared: exact, independent of the order vectors were indexed in), kept out of `_source`.
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
            "_source": {"excludes": [DOC_VECTOR_FIELD]},
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
                "tokens": {"type": "binary"},  # a document's word sequence (matching/alignment.py)
                "vector": {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
                           "index_options": options},
                DOC_VECTOR_FIELD: {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine",
                                   "index_options": {"type": "flat"}},
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


PAIRS_SUFFIX = "-pairs"


def pairs_index(physical_index: str) -> str:
    """The index beside a physical vector index that holds the catalogue's current pairs
    (transforms/incremental/current.py); it is emptied and switched with its slot."""
    return physical_index + PAIRS_SUFFIX


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
        client.indices.delete(index=pairs_index(target.physical_index), ignore_unavailable=True)
        client.indices.delete(index=target.physical_index + "-run", ignore_unavailable=True)  # io/run_state.py
        client.indices.delete(index=target.physical_index + "-around", ignore_unavailable=True)  # io/neighbourhood_store.py
        return target, "full"
    finally:
        client.close()


def check_cluster(config: EsConfig) -> dict:
    """Pre-flight: fails fast with a clear message when the cluster is unreachable or refuses us,
    or when the alias name is taken by a concrete index."""
    def alias_free(client):
        if client.indices.exists(index=config.index) and not client.indices.exists_alias(name=config.index):
            raise ConfigError(f"'{config.index}' is a concrete index, not an alias: choose another --es_index "
                              f"(vectors go to versioned indices such as {config.physical_index} behind it)")

    return check_connection(config.connection, check=alias_free)


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
                 "shingles", "tokens", "vector")


def to_action(record: dict, index: str) -> dict:
    """Embedding record -> bulk `index` action with a deterministic _id (doc_id defaults to id)."""
    source = {k: record[k] for k in SOURCE_FIELDS if record.get(k) is not None}
    if "vector" in source:  # float32 in flight; JSON needs a list
        source["vector"] = as_list(source["vector"])
        source.setdefault("dims", len(source["vector"]))
    source.setdefault("doc_id", record["id"])
    source.setdefault("unit_id", record["id"])
    source.setdefault("unit_type", "document")
    if source["unit_type"] == "document" and "vector" in source:
        source[DOC_VECTOR_FIELD] = source["vector"]
    return {"_op_type": "index", "_index": index,
            "_id": document_id(source["doc_id"], source["unit_type"], int(source.get("unit_index", 0))),
            "_source": source}


class WriteToElasticsearch(beam.PTransform):
    """Vector record -> tagged `indexed` (unit ids) and `dead_letter` (DeadLetter dicts); the
    physical index is created from the first batch (dims of its vectors)."""

    def __init__(self, config: EsConfig, *, batch_size: int = 500, batch_bytes: int = 8 << 20):
        super().__init__()
        self.config = config
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    def expand(self, records):
        config = self.config
        physical = config.physical_index

        def create_index(client, actions) -> bool:
            dims = next((len(a["_source"]["vector"]) for a in actions if "vector" in a["_source"]), None)
            if dims:
                ensure_index(client, physical, dims, config.index_options)
            return bool(dims)

        return records | "Bulk" >> BulkWrite(config.connection, lambda r: to_action(r, physical),
                                             batch_size=self.batch_size, batch_bytes=self.batch_bytes,
                                             before_first=create_index, main_tag="indexed")


class RefreshIndex(beam.PTransform):
    """PCollection (anything) -> singleton count, emitted after the index was refreshed (and, with
    `point=True`, the alias pointed at it). Use it as a side input to make searches wait until every
    write is visible. The job points the alias only at its very end (PointAlias).

    `merge_segments` > 0: the index is then force-merged to at most that many segments (a fresh,
    bulk-loaded index, read-only from here on: each segment holds its own HNSW graph and a kNN query
    searches every one, so fewer segments make every later query cheaper). The merge is an
    optimisation: past `merge_timeout_s` the job goes on with the unmerged index (same results,
    slower queries) and warns; the merge goes on in the cluster.
    """

    def __init__(self, config: EsConfig, point: bool = True, merge_segments: int = 0,
                 merge_timeout_s: float = 1800.0):
        super().__init__()
        self.config = config
        self.point = point
        self.merge_segments = merge_segments
        self.merge_timeout_s = merge_timeout_s

    def expand(self, written):
        config = self.config

        point, merge_segments, merge_timeout_s = self.point, self.merge_segments, self.merge_timeout_s

        def refresh(count: int) -> int:
            client = config.client()
            physical = config.physical_index
            try:
                if client.indices.exists(index=physical):
                    client.indices.put_settings(index=physical, settings={"index": {"refresh_interval": None}})
                    client.indices.refresh(index=physical)
                    if merge_segments > 0:
                        force_merge(client, physical, merge_segments, merge_timeout_s)
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


def force_merge(client, index: str, max_segments: int, timeout_s: float, poll_s: float = 30.0) -> bool:
    """Force-merges `index` to at most `max_segments` segments, waiting at most `timeout_s` seconds.
    Returns True when the merge finished (the index is then refreshed), False when the wait ran out:
    the merge goes on in the cluster, the caller goes on with the unmerged index. The merge runs as a
    task (no HTTP request held open for its length) and the wait polls it.

    Elasticsearch 8.19+ starts no merge while its disk is fuller than `indices.merge.disk.watermark.high`
    (95%, or less than 100 GB free): the merge then waits for disk space, which the warning says.
    The task API is a technical preview in 8.x; it is the only way to follow a merge without holding
    a request open for hours."""
    started = time.monotonic()
    task = client.indices.forcemerge(index=index, max_num_segments=max_segments, wait_for_completion=False)["task"]
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeneralAvailabilityWarning)
            status = client.tasks.get(task_id=task)
        elapsed = time.monotonic() - started
        if status.get("completed"):
            if status.get("error"):
                raise RuntimeError(f"force merge of {index} failed: {status['error']}")
            client.indices.refresh(index=index)
            _LOG.info("force-merged %s to %d segment(s) in %.1f s", index, max_segments, elapsed)
            return True
        if elapsed >= timeout_s:
            _LOG.warning("force merge of %s to %d segment(s) not finished after %.0f s; searching the unmerged "
                         "index (same results, slower kNN queries). %s", index, max_segments, timeout_s,
                         _merge_hint(client))
            return False
        # Polls 0.5 s, 1 s, 2 s, ... apart, at most poll_s: a short merge costs little wait.
        time.sleep(min(poll_s, max(0.5, elapsed), timeout_s - elapsed + 0.01))


def _merge_hint(client) -> str:
    """Why a merge may be waiting: the fullest data disk of the cluster's nodes, if readable."""
    try:
        nodes = client.nodes.stats(metric="fs")["nodes"].values()
        used = max(1 - n["fs"]["total"]["available_in_bytes"] / n["fs"]["total"]["total_in_bytes"] for n in nodes)
        free_gb = min(n["fs"]["total"]["available_in_bytes"] for n in nodes) / 2**30
    except (ApiError, TransportError, KeyError, ZeroDivisionError):  # a hint only: without monitor
        # privileges, or with an odd answer, the warning goes out without it
        return ""
    return (f"The fullest node's disk is {used:.0%} used ({free_gb:.1f} GB free): Elasticsearch starts no merge "
            f"above indices.merge.disk.watermark.high (default 95%, or under 100 GB free).")


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
