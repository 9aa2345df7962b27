"""Incremental runs: the Elasticsearch index is the run state; only new and changed units are processed.

    docs = docs | beam.Map(with_raw_hash)                 # the raw record's hash, stored on the document unit
    state = docs | SplitDocsByState(es, settings["document"])  # .changed (cleaned), .same (skipped)
    split = units | SplitByState(es, settings)            # .fresh (new/changed units), .unchanged
    pairs = fresh_signed | BandLookup(es, thresholds, ready=ready)       # old-vs-new MinHash pairs
    stored = unit_ids | FetchStoredUnits(es)              # vectors, shingles, offsets of old units
    pruned = units_by_doc | PruneStaleUnits(es)           # units a changed document no longer has
    gone = doc_ids | DeleteAbsentDocuments(es)            # documents missing from a full snapshot

Every indexed unit carries its `content_hash` and the `settings` it was processed with (model,
model files, precision, long-text policy, MinHash parameters and banding: `unit_settings`), its
MinHash band keys (`bands`, searchable) and shingle ids (`shingles`, stored). A unit whose _id
(deterministic, `elasticsearch_io.document_id`) is in the index with the same hash and settings is
`unchanged`: it is neither embedded nor signed again. The new and changed ones are embedded, signed,
indexed, then matched against the whole index: kNN (as in a full run) and a `terms` query on the
stored band keys, verified with the exact Jaccard of the stored shingles.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.io.batching import BatchingDoFn
from transforms.io.elasticsearch_store import EsConfig, document_id
from transforms.matching.alignment import sequence_from_text
from transforms.signals.lsh import shingles_from_text
from transforms.signals.minhash import exact_jaccard
from transforms.text.units import parse_unit_id

FRESH_TAG, UNCHANGED_TAG, MOVED_TAG = "fresh", "unchanged", "moved"
CHANGED_DOCS_TAG, SAME_DOCS_TAG, SAME_RAW_TAG = "changed", "same", "same_raw"
POSITION_FIELDS = ("start", "end", "doc_chars")
_INDEX_SUFFIX = re.compile(r"#[ps](\d+)$")


def unit_settings(model_hash: str, embedding: str, minhash_key: str, bands: int, rows: int, split: str = "") -> str:
    """The settings a unit was processed with, as a short hash: a unit is reused only when equal.
    `split`: the cleaning and splitting settings (they decide which units exist)."""
    text = f"{model_hash}|{embedding}|{minhash_key}|{bands}x{rows}|{split}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def raw_hash(doc: dict) -> str:
    """Hash of a raw input record (every field but its provenance): equal hashes, equal outputs."""
    import json

    fields = {k: v for k, v in doc.items() if k not in ("source", "line", "raw_hash")}
    return hashlib.sha1(json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()[:16]


def with_raw_hash(doc: dict) -> dict:
    """Document dict -> the same with "raw_hash" (carried to its document unit and the index)."""
    return {**doc, "raw_hash": raw_hash(doc)}


def es_id_of_unit(unit_id: str) -> str:
    """Unit id ('doc', 'doc#p3', 'doc#s1') -> the Elasticsearch _id its vector is stored under."""
    doc_id, unit_type = parse_unit_id(unit_id)
    m = _INDEX_SUFFIX.search(unit_id)
    return document_id(doc_id, unit_type, int(m.group(1)) if m else 0)


class _Batched(BatchingDoFn):
    """A batching DoFn with an Elasticsearch client (`self.client`) and the store's `self.config`."""

    def __init__(self, config: EsConfig, batch_size: int):
        super().__init__(config, batch_size)
        self.config = config


class _SplitDocsFn(_Batched):
    def __init__(self, config: EsConfig, settings: str, batch_size: int = 1000):
        super().__init__(config, batch_size)
        self.settings = settings
        self.same = Metrics.counter("incremental", "unchanged_documents")
        self.changed = Metrics.counter("incremental", "new_or_changed_documents")

    def handle(self, batch):
        found = {}
        ids = [document_id(d["id"], "document", 0) for d in batch]
        if self.client.indices.exists(index=self.config.physical_index):
            response = self.client.mget(index=self.config.physical_index, ids=ids,
                                        source_includes=["raw_hash", "settings", "doc_chars"])
            found = {d["_id"]: d["_source"] for d in response["docs"] if d.get("found")}
        for doc, es_id in zip(batch, ids):
            stored = found.get(es_id)
            if stored and stored.get("raw_hash") == doc["raw_hash"] and stored.get("settings") == self.settings:
                self.same.inc()
                yield beam.pvalue.TaggedOutput(SAME_DOCS_TAG, {
                    "id": doc["id"], "source": doc.get("source"), "published_at": doc.get("published_at"),
                    "url": doc.get("url"), "chars": stored.get("doc_chars") or 0})
                yield beam.pvalue.TaggedOutput(SAME_RAW_TAG, doc)
            else:
                self.changed.inc()
                yield beam.pvalue.TaggedOutput(CHANGED_DOCS_TAG, doc)


class SplitDocsByState(beam.PTransform):
    """Raw document dicts with "raw_hash" -> tagged `changed` (not indexed, or another raw record or
    settings: cleaned and split as usual), `same` ({"id", "source", "published_at", "url", "chars"}:
    skipped, nothing of it is recomputed) and `same_raw` (the raw records of the `same` documents:
    their paragraphs still count towards the corpus's template text). `settings`: the document
    unit's settings."""

    def __init__(self, config: EsConfig, settings: str, batch_size: int = 1000):
        super().__init__()
        self.config, self.settings, self.batch_size = config, settings, batch_size

    def expand(self, docs):
        return docs | "LookupDocState" >> beam.ParDo(
            _SplitDocsFn(self.config, self.settings, self.batch_size)).with_outputs(CHANGED_DOCS_TAG, SAME_DOCS_TAG,
                                                                                SAME_RAW_TAG)


class _SplitByStateFn(_Batched):
    def __init__(self, config: EsConfig, settings: dict, batch_size: int = 1000):
        super().__init__(config, batch_size)
        self.settings = settings
        self.new = Metrics.counter("incremental", "new_units")
        self.changed = Metrics.counter("incremental", "changed_units")
        self.unchanged = Metrics.counter("incremental", "unchanged_units")
        self.moved = Metrics.counter("incremental", "moved_units")

    def handle(self, batch):
        from elasticsearch import helpers

        ids = [document_id(u["doc_id"], u["unit_type"], int(u["unit_index"])) for u in batch]
        found = {}
        if self.client.indices.exists(index=self.config.physical_index):
            response = self.client.mget(index=self.config.physical_index, ids=ids,
                                        source_includes=["content_hash", "settings", *POSITION_FIELDS])
            found = {d["_id"]: d["_source"] for d in response["docs"] if d.get("found")}
        moves = []
        for unit, es_id in zip(batch, ids):
            stored = found.get(es_id)
            if (stored is not None and stored.get("content_hash") == unit["content_hash"]
                    and any(stored.get(f) != unit.get(f) for f in POSITION_FIELDS)):
                # Same text at another place (an earlier paragraph of its document changed): the
                # stored offsets are updated, the vector kept, the document matched again.
                moves.append({"_op_type": "update", "_index": self.config.physical_index, "_id": es_id,
                              "doc": {f: unit.get(f) for f in POSITION_FIELDS}})
                self.moved.inc()
                yield beam.pvalue.TaggedOutput(MOVED_TAG, unit["doc_id"])
        if moves:
            _, errors = helpers.bulk(self.client, moves, raise_on_error=False)
            if errors:
                raise RuntimeError(f"updating the offsets of {len(errors)} moved units failed: {errors[:3]}")
        for unit, es_id in zip(batch, ids):
            stored = found.get(es_id)
            if stored is None:
                self.new.inc()
                yield beam.pvalue.TaggedOutput(FRESH_TAG, unit)
            elif (stored.get("content_hash") == unit["content_hash"]
                  and stored.get("settings") == self.settings[unit["unit_type"]]):
                self.unchanged.inc()
                yield beam.pvalue.TaggedOutput(UNCHANGED_TAG, unit)
            else:
                self.changed.inc()
                yield beam.pvalue.TaggedOutput(FRESH_TAG, unit)


class SplitByState(beam.PTransform):
    """Unit dicts -> tagged `fresh` (not indexed, or indexed with another text or settings) and
    `unchanged` units, and `moved`: doc ids of unchanged units whose offsets changed (updated in
    place). `settings`: unit type -> unit_settings() string of this run."""

    def __init__(self, config: EsConfig, settings: dict, batch_size: int = 1000):
        super().__init__()
        self.config, self.settings, self.batch_size = config, dict(settings), batch_size

    def expand(self, units):
        return units | "LookupState" >> beam.ParDo(
            _SplitByStateFn(self.config, self.settings, self.batch_size)).with_outputs(
                FRESH_TAG, UNCHANGED_TAG, MOVED_TAG)


class _BandLookupFn(_Batched):
    def __init__(self, config: EsConfig, thresholds: dict, max_hits: int, batch_size: int = 50):
        super().__init__(config, batch_size)
        self.thresholds = thresholds
        self.max_hits = max_hits
        self.queries = Metrics.counter("incremental", "band_queries")
        self.candidates = Metrics.counter("incremental", "band_candidates")
        self.verified = Metrics.counter("incremental", "band_verified_pairs")
        self.truncated = Metrics.counter("incremental", "band_lookups_truncated")

    def handle(self, batch):
        batch = [u for u in batch if u["bands"]]
        if not batch:
            return
        searches = []
        for unit in batch:
            searches.append({"index": self.config.physical_index})
            searches.append(band_query(unit, self.max_hits))
        response = self.client.msearch(searches=searches)
        for unit, result in zip(batch, response["responses"]):
            self.queries.inc()
            pairs, candidates, truncated = verified_band_pairs(unit, result, self.thresholds[unit["unit_type"]])
            self.candidates.inc(candidates)
            self.truncated.inc(int(truncated))
            self.verified.inc(len(pairs))
            yield from pairs


def band_query(unit: dict, max_hits: int) -> dict:
    """The search body of one signed unit {"doc_id", "unit_type", "bands"}: indexed units of its type
    in other documents that share a MinHash band key (at most `max_hits`). Shared by the job and the
    draft check (service/)."""
    return {"query": {"bool": {"filter": [{"terms": {"bands": unit["bands"]}}, {"term": {"unit_type": unit["unit_type"]}}],
                               "must_not": [{"term": {"doc_id": unit["doc_id"]}}]}},
            "size": max_hits, "_source": ["unit_id", "shingles"], "track_total_hits": True}


def verified_band_pairs(unit: dict, result: dict, threshold: float) -> tuple[list[dict], int, bool]:
    """One msearch response of `band_query` -> (Pair dicts {"doc_a", "doc_b", "jaccard", "method":
    "minhash"} with exact Jaccard of the shingle ids >= threshold, candidates seen, truncated?)."""
    if "error" in result:
        raise RuntimeError(f"band lookup failed for {unit['unit_id']}: {result['error']}")
    hits, pairs = result["hits"]["hits"], []
    for hit in hits:
        other = hit["_source"]
        if not other.get("shingles"):
            continue
        j = exact_jaccard(unit["ids"], shingles_from_text(other["shingles"]))
        if j >= threshold:
            a, b = sorted((unit["unit_id"], other["unit_id"]))
            pairs.append({"doc_a": a, "doc_b": b, "jaccard": round(float(j), 6), "method": "minhash"})
    return pairs, len(hits), result["hits"]["total"]["value"] > len(hits)


class BandLookup(beam.PTransform):
    """Signed unit dicts ({"unit_id", "doc_id", "unit_type", "bands", "ids"}) -> Pair dicts
    {"doc_a", "doc_b", "jaccard", "method": "minhash"} for every indexed unit of another document that
    shares a band key and has exact Jaccard >= the type's threshold. At most `max_hits` units per
    lookup (shared boilerplate); truncated lookups are counted (`incremental/band_lookups_truncated`).
    `ready`: a singleton PCollection; lookups start after it (all writes visible)."""

    def __init__(self, config: EsConfig, thresholds: dict, *, ready, max_hits: int = 200):
        super().__init__()
        self.config, self.thresholds, self.ready, self.max_hits = config, dict(thresholds), ready, max_hits

    def expand(self, units):
        return units | "LookupBands" >> beam.ParDo(
            _BandLookupFn(self.config, self.thresholds, self.max_hits), beam.pvalue.AsSingleton(self.ready))


class _FetchStoredFn(_Batched):
    FIELDS = ["unit_id", "doc_id", "unit_type", "unit_index", "start", "end", "doc_chars", "vector", "shingles",
              "bands", "tokens"]

    def __init__(self, config: EsConfig, batch_size: int = 500):
        super().__init__(config, batch_size)
        self.fetched = Metrics.counter("incremental", "stored_units_fetched")
        self.missing = Metrics.counter("incremental", "stored_units_missing")

    def handle(self, batch):
        import numpy as np

        response = self.client.mget(index=self.config.physical_index, ids=[es_id_of_unit(u) for u in batch],
                                    source_includes=self.FIELDS)
        for unit_id, doc in zip(batch, response["docs"]):
            if not doc.get("found"):
                self.missing.inc()
                continue
            self.fetched.inc()
            src = doc["_source"]
            yield {"id": unit_id, "doc_id": src["doc_id"], "unit_type": src["unit_type"],
                   "unit_index": src.get("unit_index", 0), "start": src.get("start"), "end": src.get("end"),
                   "doc_chars": src.get("doc_chars"), "vector": np.asarray(src["vector"], dtype=np.float32),
                   "ids": shingles_from_text(src["shingles"]) if src.get("shingles") else np.zeros(0, np.uint64),
                   "bands": src.get("bands") or [],
                   "tokens": sequence_from_text(src["tokens"]) if src.get("tokens") is not None else None}


class FetchStoredUnits(beam.PTransform):
    """Unit ids -> the stored unit {"id", "doc_id", "unit_type", "unit_index", "start", "end",
    "doc_chars", "vector", "ids", "bands", "tokens" (a document's word sequence, else None)}; ids not
    in the index are counted and skipped."""

    def __init__(self, config: EsConfig):
        super().__init__()
        self.config = config

    def expand(self, unit_ids):
        return unit_ids | "MGet" >> beam.ParDo(_FetchStoredFn(self.config))


def delete_matching(client, index: str, query: dict, page: int = 1000) -> list[str]:
    """Deletes every document of `index` matching `query`; returns the ids it deleted. Pages through
    the ids (sorted by unit_id, search_after) and deletes them with bulk requests: works on clusters
    without the reindex module's _delete_by_query too."""
    from elasticsearch import helpers

    deleted, after = [], None
    while True:
        body = {"query": query, "size": page, "sort": [{"unit_id": "asc"}], "_source": False}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, **body)["hits"]["hits"]
        if not hits:
            return deleted
        for ok, item in helpers.streaming_bulk(
                client, ({"_op_type": "delete", "_index": index, "_id": h["_id"]} for h in hits),
                raise_on_error=False):
            if ok:
                deleted.append(item["delete"]["_id"])
        after = hits[-1]["sort"]


class _PruneFn(_Batched):
    def __init__(self, config: EsConfig, batch_size: int = 50):
        super().__init__(config, batch_size)
        self.deleted = Metrics.counter("incremental", "stale_units_deleted")

    def handle(self, batch):
        clauses = [{"bool": {"filter": [{"term": {"doc_id": doc_id}}],
                             "must_not": [{"terms": {"unit_id": sorted(unit_ids)}}]}}
                   for doc_id, unit_ids in batch]
        deleted = delete_matching(self.client, self.config.physical_index,
                                  {"bool": {"should": clauses, "minimum_should_match": 1}})
        self.deleted.inc(len(deleted))
        yield from deleted


class PruneStaleUnits(beam.PTransform):
    """(doc id, the unit ids it has now) -> ids of the deleted units: the indexed units of that
    document that it no longer has (a changed document with fewer paragraphs). One element per unit
    deleted, so a count of them does not depend on how the runner batched the documents."""

    def __init__(self, config: EsConfig):
        super().__init__()
        self.config = config

    def expand(self, docs):
        return docs | "DeleteStale" >> beam.ParDo(_PruneFn(self.config))


def indexed_doc_ids(client, index: str, page: int = 5000) -> Iterable[str]:
    """Every distinct doc_id in `index`, by composite aggregation pages (memory bounded by `page`)."""
    after = None
    while True:
        composite = {"size": page, "sources": [{"doc": {"terms": {"field": "doc_id"}}}]}
        if after:
            composite["after"] = after
        response = client.search(index=index, size=0, aggs={"docs": {"composite": composite}})
        agg = response["aggregations"]["docs"]
        for bucket in agg["buckets"]:
            yield bucket["key"]["doc"]
        after = agg.get("after_key")
        if not agg["buckets"] or not after:
            return


class _DeleteDocsFn(_Batched):
    def __init__(self, config: EsConfig, batch_size: int = 500):
        super().__init__(config, batch_size)
        self.deleted = Metrics.counter("incremental", "absent_documents_deleted")

    def handle(self, batch):
        delete_matching(self.client, self.config.physical_index, {"terms": {"doc_id": sorted(batch)}})
        self.deleted.inc(len(batch))
        yield from batch


class DeleteAbsentDocuments(beam.PTransform):
    """Doc ids of the input (a full snapshot) -> ids of the indexed documents absent from it, whose
    units were deleted from the index."""

    def __init__(self, config: EsConfig):
        super().__init__()
        self.config = config

    def expand(self, input_ids):
        config = self.config

        def scan(_):
            client = config.client()
            try:
                if client.indices.exists(index=config.physical_index):
                    yield from indexed_doc_ids(client, config.physical_index)
            finally:
                client.close()

        indexed = (input_ids.pipeline | "Start" >> beam.Create([None]) | "ScanIndexedDocs" >> beam.FlatMap(scan)
                   | "KeyIndexed" >> beam.Map(lambda d: (d, "indexed")))
        present = input_ids | "KeyInput" >> beam.Map(lambda d: (d, "input"))
        absent = ((indexed, present) | "Both" >> beam.Flatten() | "ByDoc" >> beam.GroupByKey()
                  | "Absent" >> beam.FlatMap(lambda kv: [kv[0]] if set(kv[1]) == {"indexed"} else []))
        return absent | "Delete" >> beam.ParDo(_DeleteDocsFn(config))
