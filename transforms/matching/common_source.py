"""Copies of a common source: two documents that are each a whole-document duplicate of a third are
reported as a duplicate pair themselves, with that document as evidence.

    rows = doc_rows | CommonSourcePairs(doc_vectors, doc_signatures, min_cosine=0.55)

Two differently edited copies of one page (10% of the words replaced in one, a fifth of the sentences
dropped in the other) can share too little to match directly (Jaccard 0.28-0.45 on real help pages),
yet both match their source. Groups already put the three together; this puts the pair in the
duplicates table, where users look for it, with the pair's own scores and the source named.

Input and output: document-pair rows (transforms/matching/rollup.py: "doc_a" < "doc_b", "relation",
"cosine", "jaccard", "method", "rule", "evidence", ...). A pair (x, y) of documents that share a
"duplicate" partner s, and whose own document cosine is at least `min_cosine`, becomes
{"relation": "duplicate", "method": "...+common_source", "rule": "common source <s>: ..."}: a new row,
or the existing "passage" row upgraded (its passage evidence kept). Existing "duplicate" rows and
every other row pass through unchanged. A document with more than `max_partners` duplicate partners
(a page copied many times, whose copies mostly match each other directly) yields no such pairs,
counted as `common_source/partners_over_limit`: the pairs grow with the square of the partners.

One pass: only pairs decided by the other clauses serve as sources (no chains of common sources).
"""
from __future__ import annotations

import itertools
import json

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.matching.merge import cosine
from transforms.matching.pair_join import JoinPairScores
from transforms.signals.minhash import exact_jaccard

MAX_PARTNERS = 50


def sibling_pairs(source: str, partners, max_partners: int = MAX_PARTNERS):
    """(source, its duplicate partners) -> ((x, y), source) for each pair of partners, x < y;
    nothing when there are more than `max_partners`."""
    partners = sorted(set(partners))
    if len(partners) > max_partners:
        return
    for x, y in itertools.combinations(partners, 2):
        yield (x, y), source


def upgrade(pair: tuple[str, str], existing: list[dict], sources: list[str], cos, jac, min_cosine: float):
    """The rows of one document pair after the common-source check (see the module docstring)."""
    if not sources or any(r.get("relation", "duplicate") == "duplicate" for r in existing) \
            or cos is None or cos < min_cosine:
        return list(existing)
    source = min(sources)
    rule = f"common source {source}: both duplicates of it, cosine>={min_cosine}"
    if existing:
        row = dict(existing[0])
        return [{**row, "relation": "duplicate", "method": f"{row['method']}+common_source",
                 "rule": f"{rule}; {row['rule']}"}]
    return [{"doc_a": pair[0], "doc_b": pair[1], "relation": "duplicate", "granularity": "document",
             "cosine": round(float(cos), 6), "jaccard": None if jac is None else round(float(jac), 6),
             "margin": None, "aligned": None, "small_edits": None, "method": "common_source", "rule": rule,
             "matched_units": 0, "coverage_a": None, "coverage_b": None,
             "evidence": json.dumps([{"common_source": s} for s in sorted(sources)[:5]])}]


class CommonSourcePairs(beam.PTransform):
    """Document-pair rows -> the same rows, with pairs of copies of a common source added or upgraded.

    `doc_vectors`: {"id": document id (a document unit's id), "vector"} rows; `doc_signatures`:
    {"id", "ids" (sorted shingle ids)} rows of documents, or None (no Jaccard on new rows)."""

    def __init__(self, doc_vectors, doc_signatures=None, *, min_cosine: float = 0.55,
                 max_partners: int = MAX_PARTNERS):
        super().__init__()
        self.doc_vectors, self.doc_signatures = doc_vectors, doc_signatures
        self.min_cosine, self.max_partners = min_cosine, max_partners

    def expand(self, rows):
        min_cosine, max_partners = self.min_cosine, self.max_partners
        over = Metrics.counter("common_source", "partners_over_limit")
        found = Metrics.counter("common_source", "pairs")

        def siblings(element):
            source, partners = element
            partners = list(partners)
            if len(set(partners)) > max_partners:
                over.inc()
            yield from sibling_pairs(source, partners, max_partners)

        duplicates = rows | "Duplicates" >> beam.Filter(lambda r: r.get("relation", "duplicate") == "duplicate")
        candidates = (duplicates
                      | "BothEnds" >> beam.FlatMap(lambda r: [(r["doc_a"], r["doc_b"]), (r["doc_b"], r["doc_a"])])
                      | "PartnersBySource" >> beam.GroupByKey()
                      | "Siblings" >> beam.FlatMap(siblings))
        pairs = candidates | "SiblingKeys" >> beam.Keys() | "OncePerPair" >> beam.Distinct()
        vec = self.doc_vectors | "VectorByDoc" >> beam.Map(
            lambda r: (r["id"], np.asarray(r["vector"], dtype=np.float32)))
        joined = {"rows": rows | "KeyRows" >> beam.Map(lambda r: ((r["doc_a"], r["doc_b"]), r)),
                  "sources": candidates,
                  "cosine": pairs | "SiblingCosine" >> JoinPairScores(vec, cosine, namespace="common_source")}
        if self.doc_signatures is not None:
            ids = self.doc_signatures | "ShinglesByDoc" >> beam.Map(lambda s: (s["id"], s["ids"]))
            joined["jaccard"] = pairs | "SiblingJaccard" >> JoinPairScores(ids, exact_jaccard, namespace="common_source")

        def decide(element):
            pair, g = element
            existing = list(g["rows"])
            cos = g["cosine"][0] if g["cosine"] else None
            jac = g["jaccard"][0] if g.get("jaccard") else None
            out = upgrade(pair, existing, list(g["sources"]), cos, jac, min_cosine)
            if out != existing:
                found.inc()
            yield from out

        return joined | "JoinSiblings" >> beam.CoGroupByKey() | "Decide" >> beam.FlatMap(decide)
