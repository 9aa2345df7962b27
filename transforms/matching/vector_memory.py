"""Exact (brute-force) nearest neighbours on L2-normalised vectors: the reference for the ANN.

    pairs = vectors | ExactKnnDuplicates(k=10, min_cosine=0.85)

Same contract as `knn.KnnDuplicates` (Embedding dicts in, Pair dicts out, method "knn"; a unit is
only compared with units of its own `unit_type`, as the Elasticsearch search filters), but all
vectors of a type are gathered on one worker: fine for small corpora and tests, and the yardstick against
which the Elasticsearch kNN stage's recall is measured. Not for large runs.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from transforms.records import ordered_pair
from transforms.matching.knn import floor_of


def exact_neighbours(ids: list[str], vectors: np.ndarray, *, k: int, min_cosine: float,
                     doc_ids: list[str] | None = None, block: int = 1024, means: dict | None = None
                     ) -> dict[tuple[str, str], float]:
    """Top-k neighbours (cosine >= min_cosine) of every row, excluding itself and rows of the same
    doc_id (when given); returns {(a, b) with a < b: cosine}. `means`, when given, receives
    {id: mean cosine of its k nearest neighbours} (floor or not)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(ids)
    groups = np.asarray(doc_ids if doc_ids is not None else ids)
    pairs: dict[tuple[str, str], float] = {}
    k = min(k, max(n - 1, 0))
    if k == 0:
        return pairs
    for start in range(0, n, block):
        sims = vectors[start:start + block] @ vectors.T
        rows = np.arange(sims.shape[0])
        same = groups[start:start + block, None] == groups[None, :]
        sims[same] = -np.inf
        sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        if means is not None:
            for r, cols in enumerate(top):
                usable = sims[r, cols][np.isfinite(sims[r, cols])]
                if usable.size:
                    means[ids[start + r]] = float(usable.mean())
        for r, cols in enumerate(top):
            for c in cols:
                cos = float(sims[r, c])
                if cos >= min_cosine:
                    key = ordered_pair(ids[start + r], ids[c])
                    pairs[key] = max(pairs.get(key, -1.0), cos)
    return pairs


class ExactKnnDuplicates(beam.PTransform):
    """Embedding dict -> Pair dict {"doc_a", "doc_b", "cosine", "method": "knn"} by exact search."""

    def __init__(self, *, k: int = 10, min_cosine=0.9, exclude_same_document: bool = True,
                 with_neighbourhood: bool = False):
        """min_cosine: a float or {unit_type: float}; with_neighbourhood: return {"pairs", "neighbourhood": (id, mean top-k cosine)} (as knn.py)."""
        super().__init__()
        self.with_neighbourhood = with_neighbourhood
        self.k = k
        self.min_cosine = min_cosine
        self.exclude_same_document = exclude_same_document

    def expand(self, vectors):
        k, floor, same_doc = self.k, self.min_cosine, self.exclude_same_document

        def search(element):
            unit_type, records = element
            records = sorted(records, key=lambda r: r["id"])
            if not records:
                return
            ids = [r["id"] for r in records]
            doc_ids = [r.get("doc_id", r["id"]) for r in records] if same_doc else None
            matrix = np.stack([np.asarray(r["vector"], dtype=np.float32) for r in records])
            means: dict = {}
            found = exact_neighbours(ids, matrix, k=k, min_cosine=floor_of(floor, unit_type), doc_ids=doc_ids, means=means)
            for (a, b), cos in sorted(found.items()):
                yield {"doc_a": a, "doc_b": b, "cosine": round(cos, 6), "method": "knn"}
            for unit, mean in sorted(means.items()):
                yield beam.pvalue.TaggedOutput("neighbourhood", (unit, mean))

        found = (vectors
                 | "ByUnitType" >> beam.Map(lambda r: (r.get("unit_type", "document"), r))
                 | "GatherVectors" >> beam.GroupByKey()
                 | "ExactSearch" >> beam.FlatMap(search).with_outputs("neighbourhood", main="pairs"))
        if self.with_neighbourhood:
            return {"pairs": found["pairs"], "neighbourhood": found["neighbourhood"]}
        return found["pairs"]
