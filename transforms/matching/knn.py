"""kNN duplicate search in Elasticsearch: each vector's nearest neighbours above a cosine floor.

    pairs = vectors | KnnDuplicates(es_config, ready=refresh_signal, min_cosine=0.9)

Input: Embedding dicts {"id", "vector", optional "doc_id"}, searched in `config.physical_index`. Output: Pair dicts {"doc_a", "doc_b", "cosine", "method"}
with doc_a < doc_b, one per pair (a pair found from both ends is emitted once, with the higher
cosine). Queries are sent in batches through `msearch`. With `with_neighbourhood=True` the result is
{"pairs": ..., "neighbourhood": (id, mean cosine of its k nearest neighbours, floor or not)}: how
similar a unit is to everything near it, the denominator of the pair `margin` (merge.py); and
"neighbours": (id, [(neighbour id, cosine)] as the search returned them), which the job stores beside
the index for the draft check (transforms/io/neighbourhood_store.py).
"""
from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.io.batching import BatchingDoFn
from transforms.io.elasticsearch import msearch
from transforms.io.elasticsearch_store import DOC_VECTOR_FIELD, EsConfig
from transforms.records import as_list, ordered_pair

NEIGHBOURHOOD_TAG = "neighbourhood"
NEIGHBOURS_TAG = "neighbours"


def score_to_cosine(score: float) -> float:
    """Elasticsearch's kNN _score for `cosine` similarity is (1 + cosine) / 2."""
    return 2.0 * float(score) - 1.0


class _KnnSearchFn(BatchingDoFn):
    """Embedding dict -> ((doc_a, doc_b), cosine) for every neighbour at or above min_cosine (a
    float, or {unit_type: float}: documents and passages searched with their own floors)."""

    def __init__(self, config: EsConfig, k: int, num_candidates: int, min_cosine: float, batch_size: int,
                 exclude_same_document: bool, with_neighbours: bool = False, exact_documents: bool = True):
        super().__init__(config, batch_size)
        self.exact_documents = exact_documents
        self.with_neighbours = with_neighbours
        self.config = config
        self.exclude_same_document = exclude_same_document
        self.k = k
        self.num_candidates = num_candidates
        self.min_cosine = min_cosine
        self.queries = Metrics.counter("knn", "queries")
        self.hits = Metrics.counter("knn", "neighbours_above_floor")
        self.latency = Metrics.distribution("knn", "msearch_latency_ms")
        self.ties = Metrics.counter("knn", "ties_beyond_window")
        self.widened = Metrics.counter("knn", "searches_widened_for_ties")

    def _msearch(self, bodies: list[dict]) -> list[dict]:
        return msearch(self.client, self.config.physical_index, bodies)

    def handle(self, batch):
        started = time.monotonic()
        responses = self._msearch([knn_query(rec, self.k, self.num_candidates, self.exclude_same_document,
                                             self.exact_documents) for rec in batch])
        responses, widened = widen_ties(self._msearch, batch, responses, self.k, self.num_candidates,
                                        self.exclude_same_document, self.exact_documents)
        self.latency.update(int((time.monotonic() - started) * 1000))
        self.widened.inc(widened)
        for rec, result in zip(batch, responses):
            self.queries.inc()
            neighbours, around = read_knn_result(rec["id"], result, self.k)
            if ties_beyond_window(result, self.k, MAX_WINDOW):
                self.ties.inc()
            floor = floor_of(self.min_cosine, rec.get("unit_type", "document"))
            for other, cosine in neighbours:
                if cosine < floor:
                    continue
                self.hits.inc()
                yield ordered_pair(rec["id"], other), cosine
            if around is not None:
                yield beam.pvalue.TaggedOutput(NEIGHBOURHOOD_TAG, (rec["id"], around))
            if self.with_neighbours:
                yield beam.pvalue.TaggedOutput(NEIGHBOURS_TAG, (rec["id"], neighbours))


def floor_of(min_cosine, unit_type: str) -> float:
    """The cosine floor of a unit type: `min_cosine` is a float, or {unit_type: float} (a type it
    does not name keeps nothing)."""
    return min_cosine.get(unit_type, 2.0) if isinstance(min_cosine, dict) else min_cosine


# Elasticsearch's ceiling on a kNN search's k and num_candidates (and the default max_result_window).
MAX_WINDOW = 10_000


def tie_window(k: int) -> int:
    """Hits asked for per search: 3 x k, so neighbours tied at the k-th cosine (copies of one page
    embed to the same vector) can be ranked by id instead of by the index's internal order; a search
    whose ties run past it is asked again with a wider window (`widen_ties`)."""
    return 3 * k


def knn_query(rec: dict, k: int, num_candidates: int, exclude_same_document: bool = True,
              exact_documents: bool = True, window: int | None = None) -> dict:
    """The kNN search body for one unit {"id", "vector", "doc_id", "unit_type"}: its k nearest units
    of the same type, the unit itself and (optionally) the other units of its document excluded in
    the query, so the k neighbours are all usable. Shared by the job and the draft check (service/).

    `exact_documents`: a document searches the `flat` DOC_VECTOR_FIELD (every document compared: the
    same k neighbours on every run, whatever order the index was built in); else, and for passages,
    the approximate HNSW field `vector` (num_candidates per shard). It asks for `window` hits
    (`tie_window(k)` unless given); `read_knn_result` keeps the k first by (cosine descending, unit id)."""
    unit_type = rec.get("unit_type", "document")
    vector_field = DOC_VECTOR_FIELD if exact_documents and unit_type == "document" else "vector"
    field, value = (("doc_id", rec.get("doc_id", rec["id"])) if exclude_same_document else ("unit_id", rec["id"]))
    window = min(window or tie_window(k), MAX_WINDOW)
    return {"knn": {"field": vector_field, "query_vector": as_list(rec["vector"]), "k": window,
                    "num_candidates": min(max(num_candidates, window + 1), MAX_WINDOW),
                    "filter": {"bool": {"must_not": [{"term": {field: value}}],
                                        "filter": [{"term": {"unit_type": unit_type}}]}}},
            "_source": ["unit_id", "doc_id"], "size": window}


def read_knn_result(unit_id: str, result: dict, k: int) -> tuple[list[tuple[str, float]], float | None]:
    """One msearch response of `knn_query` -> ([(neighbour unit id, cosine)], neighbourhood): the k
    nearest neighbours by (cosine descending, unit id) — which of several equally near units is k-th
    does not depend on the order the index was built in — with no similarity floor; their mean
    cosine is the unit's neighbourhood (None without neighbours), the denominator of the pair margin
    (merge.py)."""
    if "error" in result:
        raise RuntimeError(f"kNN search failed for {unit_id}: {result['error']}")
    neighbours = []
    for hit in result["hits"]["hits"]:
        other = hit["_source"].get("unit_id") or hit["_source"]["doc_id"]
        if other != unit_id:
            neighbours.append((other, score_to_cosine(hit["_score"])))
    neighbours = sorted(neighbours, key=lambda n: (-n[1], n[0]))[:k]
    return neighbours, (sum(c for _, c in neighbours) / len(neighbours) if neighbours else None)


def ties_beyond_window(result: dict, k: int, window: int | None = None) -> bool:
    """True when a search of `window` hits (`tie_window(k)` unless given) came back full and its last
    hit is as near as the k-th: more units tie at the k-th place than it holds, so which of them were
    returned still depends on the index's order."""
    hits = result.get("hits", {}).get("hits", [])
    full = len(hits) >= min(window or tie_window(k), MAX_WINDOW)
    return full and k <= len(hits) and hits[-1]["_score"] == hits[k - 1]["_score"]


def widen_ties(msearch, recs: list[dict], results: list[dict], k: int, num_candidates: int,
               exclude_same_document: bool = True, exact_documents: bool = True) -> tuple[list[dict], int]:
    """The `knn_query` results of `recs` -> (results, searches asked again): a search whose ties at
    the k-th cosine run past its window (a class of identical copies larger than 3 x k) is asked again
    with twice the window until the class ends inside it (or MAX_WINDOW), so the k neighbours chosen
    by id are the same whatever order the index was built in. `msearch`: [body] -> [response]."""
    results, windows, asked = list(results), [tie_window(k)] * len(recs), 0
    pending = [i for i, result in enumerate(results) if "error" not in result and ties_beyond_window(result, k)]
    while pending:
        for i in pending:
            windows[i] = min(2 * windows[i], MAX_WINDOW)
        again = msearch([knn_query(recs[i], k, num_candidates, exclude_same_document, exact_documents, windows[i])
                         for i in pending])
        asked += len(pending)
        for i, result in zip(pending, again):
            results[i] = result
        pending = [i for i in pending if windows[i] < MAX_WINDOW and "error" not in results[i]
                   and ties_beyond_window(results[i], k, windows[i])]
    return results, asked


class KnnDuplicates(beam.PTransform):
    """Embedding dict -> Pair dict, deduplicated per (doc_a, doc_b).

    `ready` is a singleton PCollection (e.g. RefreshIndex's output): searches start only after it;
    None when the caller's own step already waits for the index (pipelines/stages.py SemanticMatch).
    """

    def __init__(self, config: EsConfig, *, ready, k: int = 10, num_candidates: int = 100,
                 min_cosine: float = 0.9, batch_size: int = 64, exclude_same_document: bool = True,
                 with_neighbourhood: bool = False, exact_documents: bool = True):
        super().__init__()
        self.exact_documents = exact_documents
        self.with_neighbourhood = with_neighbourhood
        self.exclude_same_document = exclude_same_document
        self.config = config
        self.ready = ready
        self.k = k
        self.num_candidates = num_candidates
        self.min_cosine = min_cosine
        self.batch_size = batch_size

    def expand(self, vectors):
        gate = {} if self.ready is None else {"ready": beam.pvalue.AsSingleton(self.ready)}
        found = (vectors
                 | "Search" >> beam.ParDo(
                     _KnnSearchFn(self.config, self.k, self.num_candidates, self.min_cosine, self.batch_size,
                                  self.exclude_same_document, with_neighbours=self.with_neighbourhood,
                                  exact_documents=self.exact_documents),
                     **gate).with_outputs(NEIGHBOURHOOD_TAG, NEIGHBOURS_TAG, main="pairs"))
        pairs = (found["pairs"]
                 | "BestPerPair" >> beam.CombinePerKey(max)
                 | "ToPair" >> beam.Map(lambda kv: {"doc_a": kv[0][0], "doc_b": kv[0][1],
                                                    "cosine": round(kv[1], 6), "method": "knn"}))
        if self.with_neighbourhood:
            return {"pairs": pairs, "neighbourhood": found[NEIGHBOURHOOD_TAG], "neighbours": found[NEIGHBOURS_TAG]}
        return pairs
