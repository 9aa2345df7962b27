"""Merging the semantic (kNN cosine) and lexical (MinHash Jaccard) signals into one evidence row.

    merged = (knn_pairs, minhash_pairs) | MergeSignals(vectors=..., signatures=..., cosine_threshold=0.85,
                                                       jaccard_threshold=0.5)
    merged["pairs"], merged["scored"]

Every pair found by either search gets both scores where computable (cosine from the stored
vectors, exact Jaccard from the shingle ids), the methods that found it, and the rule that fired.
With the kNN stage's `neighbourhood` ((id, mean cosine of its k nearest neighbours)) each pair also
gets its `margin`: cosine / the mean of its two units' neighbourhoods (the ratio margin of bitext
mining). On a site, pages on one topic all sit at cosine 0.85-0.90 to each other: a high cosine is
evidence of duplication only when it stands out from what is usual around both units, so a cosine
decision of a unit type with a margin threshold also needs margin >= that threshold (when known).
Output rows: {"doc_a", "doc_b", "cosine", "jaccard", "margin", "method", "rule"}.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from transforms.signals.minhash import exact_jaccard
from transforms.matching.pair_join import JoinPairScores
from transforms.text.units import parse_unit_id


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two L2-normalised vectors."""
    return float(np.dot(a, b))


def decide(cos, jac, cosine_threshold: float, jaccard_threshold: float, margin=None,
           margin_threshold: float = 0.0) -> str:
    """The rule that fired, e.g. 'jaccard>=0.5', 'cosine>=0.85', 'jaccard>=0.5 AND cosine>=0.85
    (margin>=1.1)', or '' (not a duplicate). A cosine needs margin >= margin_threshold when both are set."""
    fired = []
    if jac is not None and jac >= jaccard_threshold:
        fired.append(f"jaccard>={jaccard_threshold:g}")
    if cos is not None and cos >= cosine_threshold:
        if not margin_threshold or margin is None:
            fired.append(f"cosine>={cosine_threshold:g}")
        elif margin >= margin_threshold:
            fired.append(f"cosine>={cosine_threshold:g} (margin>={margin_threshold:g})")
    return " AND ".join(fired)


SCORED_TAG = "scored"


class MergeSignals(beam.PTransform):
    """Pair dicts from each search -> {"pairs": one evidence row per (doc_a, doc_b) a rule keeps,
    "scored": (unit_type, cosine, jaccard, kept) of every candidate scored, kept or not (the score
    distributions of the run report)}."""

    def __init__(self, *, vectors, signatures, cosine_threshold, jaccard_threshold, rules=None,
                 neighbourhood=None, margin_threshold=0.0):
        """Thresholds: a float, or {unit_type: float} when the pairs are units (ids as in units.py);
        unit pairs of the same document, and pairs of two unit types, are dropped. `rules`
        ({unit_type: rules.Rule}) replaces the thresholds' OR for the types it names.
        neighbourhood: (id, mean top-k cosine) from the kNN stage, or None (no margins);
        margin_threshold: a float or {unit_type: float} (0: cosine needs no margin)."""
        super().__init__()
        self.neighbourhood = neighbourhood
        self.margin_threshold = margin_threshold
        self.rules = rules or {}
        self.vectors = vectors
        self.signatures = signatures
        self.cosine_threshold = cosine_threshold
        self.jaccard_threshold = jaccard_threshold

    def expand(self, found_pairs):
        """`found_pairs`: a tuple of Pair-dict PCollections (each with doc_a, doc_b, method)."""
        cos_by_type, jac_by_type, rules = self.cosine_threshold, self.jaccard_threshold, self.rules
        margin_by_type = self.margin_threshold
        methods = (found_pairs
                   | "AllFound" >> beam.Flatten()
                   | "KeyFound" >> beam.Map(lambda p: ((p["doc_a"], p["doc_b"]), p["method"])))
        pairs = (methods | "PairKeys" >> beam.Keys() | "DistinctPairs" >> beam.Distinct())
        vec_by_id = self.vectors | "VectorById" >> beam.Map(
            lambda r: (r["id"], np.asarray(r["vector"], dtype=np.float32)))
        ids_by_id = self.signatures | "ShinglesById" >> beam.Map(lambda s: (s["id"], s["ids"]))
        cosines = pairs | "Cosine" >> JoinPairScores(vec_by_id, cosine, namespace="merge_cosine")
        jaccards = pairs | "Jaccard" >> JoinPairScores(ids_by_id, exact_jaccard, namespace="merge_jaccard")
        evidence = {"method": methods, "cosine": cosines, "jaccard": jaccards}
        if self.neighbourhood is not None:
            evidence["neighbourhood"] = pairs | "Neighbourhood" >> JoinPairScores(
                self.neighbourhood, lambda a, b: (a + b) / 2.0, namespace="merge_margin")

        def to_row(element):
            (a, b), g = element
            (doc_a, kind), (doc_b, kind_b) = parse_unit_id(a), parse_unit_id(b)
            if kind != kind_b or (kind != "document" and doc_a == doc_b):
                return
            cos_t = cos_by_type[kind] if isinstance(cos_by_type, dict) else cos_by_type
            jac_t = jac_by_type[kind] if isinstance(jac_by_type, dict) else jac_by_type
            cos = round(float(g["cosine"][0]), 6) if g["cosine"] else None
            jac = round(float(g["jaccard"][0]), 6) if g["jaccard"] else None
            around = g.get("neighbourhood")
            margin = round(cos / float(around[0]), 6) if cos is not None and around and around[0] > 0 else None
            margin_t = margin_by_type.get(kind, 0.0) if isinstance(margin_by_type, dict) else margin_by_type
            if kind in rules:
                rule = rules[kind].text if rules[kind](cosine=cos, jaccard=jac, margin=margin) else ""
            else:
                rule = decide(cos, jac, cos_t, jac_t, margin, margin_t)
            yield beam.pvalue.TaggedOutput(SCORED_TAG, (kind, cos, jac, bool(rule)))
            if not rule:
                return
            yield {"doc_a": a, "doc_b": b, "cosine": cos, "jaccard": jac, "margin": margin,
                   "method": "+".join(sorted(set(g["method"]))), "rule": rule}

        result = (evidence
                  | "JoinEvidence" >> beam.CoGroupByKey()
                  | "ToRow" >> beam.FlatMap(to_row).with_outputs(SCORED_TAG, main="pairs"))
        return {"pairs": result["pairs"], "scored": result[SCORED_TAG]}
