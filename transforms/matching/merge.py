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
With `tokens` ((document unit id, word sequence), alignment.py) each document pair also gets its
`aligned` and `small_edits`, which the alignment clause (or a rule naming them) decides on.
Every pair also gets its `containment`: the share of the smaller unit's shingles found in the other
(`overlap` below). The containment clause decides *passage reuse* of two documents: a
passage copied whole into a longer page keeps containment high while its Jaccard falls with the
length of the page (a course answer cut from a three-times longer article: Jaccard 0.3, containment
0.8); its rule starts with CONTAINMENT_RULE, and the roll-up reports such a pair as passage reuse,
never as a whole-document duplicate (rollup.py).
Output rows: {"doc_a", "doc_b", "cosine", "jaccard", "containment", "margin", "aligned", "small_edits",
"method", "rule"}.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from transforms.matching.alignment import align
from transforms.signals.minhash import shared_shingles
from transforms.matching.pair_join import JoinPairScores
from transforms.text.units import parse_unit_id


CONTAINMENT_RULE = "containment>="


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """Two shingle-id arrays -> (Jaccard, containment of the smaller in the other, shingles shared)."""
    if a.size == 0 or b.size == 0:
        return 0.0, 0.0, 0
    inter = shared_shingles(a, b)
    return inter / (a.size + b.size - inter), inter / min(a.size, b.size), inter


def is_passage_rule(rule: str) -> bool:
    """Did the containment clause (passage reuse, not a whole-document duplicate) decide this pair?"""
    return rule.startswith(CONTAINMENT_RULE)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two L2-normalised vectors."""
    return float(np.dot(a, b))


def decide(cos, jac, cosine_threshold: float, jaccard_threshold: float, margin=None,
           margin_threshold: float = 0.0, combined=None, alignment=None, aligned=None,
           containment=None, contained=None, shared=None) -> str:
    """The rule that fired, e.g. 'jaccard>=0.5', 'cosine>=0.85', 'jaccard>=0.5 AND cosine>=0.85
    (margin>=1.1)', 'jaccard>=0.45 WITH cosine>=0.85' (the combined clause), 'aligned>=0.65 WITH
    small_edits>=0.85 WITH cosine>=0.55' (the alignment clause), or '' (not a duplicate).
    A cosine alone needs margin >= margin_threshold when both are set; `combined`: (jaccard, cosine)
    that decide together, no margin needed (None: no such clause); `aligned`: (aligned, small_edits,
    cosine) thresholds deciding together over `alignment` = (aligned, small_edits) of the pair;
    `contained`: (containment, cosine, fewest shared shingles) thresholds of the containment clause over
    `containment` and `shared`, tried last: 'containment>=0.25 WITH cosine>=0.55 WITH shared>=20'
    (passage reuse; see is_passage_rule)."""
    fired = []
    if jac is not None and jac >= jaccard_threshold:
        fired.append(f"jaccard>={jaccard_threshold:g}")
    if cos is not None and cos >= cosine_threshold:
        if not margin_threshold or margin is None:
            fired.append(f"cosine>={cosine_threshold:g}")
        elif margin >= margin_threshold:
            fired.append(f"cosine>={cosine_threshold:g} (margin>={margin_threshold:g})")
    if not fired and combined and jac is not None and cos is not None and jac >= combined[0] and cos >= combined[1]:
        fired.append(f"jaccard>={combined[0]:g} WITH cosine>={combined[1]:g}")
    if (not fired and aligned and alignment is not None and cos is not None and alignment[0] >= aligned[0]
            and alignment[1] >= aligned[1] and cos >= aligned[2]):
        fired.append(f"aligned>={aligned[0]:g} WITH small_edits>={aligned[1]:g} WITH cosine>={aligned[2]:g}")
    if (not fired and contained and containment is not None and cos is not None and containment >= contained[0]
            and cos >= contained[1] and (shared or 0) >= contained[2]):
        fired.append(f"{CONTAINMENT_RULE}{contained[0]:g} WITH cosine>={contained[1]:g}"
                     + (f" WITH shared>={contained[2]}" if contained[2] else ""))
    return " AND ".join(fired)


def _of_type(value, kind: str, default=None):
    return value.get(kind, default) if isinstance(value, dict) else value


def score_pair(kind: str, cos, jac, around, *, cosine_threshold, jaccard_threshold, rules=None,
               margin_threshold=0.0, combined=None, alignment=None, aligned=None, containment=None,
               contained=None, shared=None) -> tuple:
    """One unit pair's raw scores -> (cosine, jaccard, margin, rule that fired or ''), rounded as
    stored. `around`: the mean of its two units' neighbourhoods (None: unknown, no margin);
    thresholds: floats or {unit_type: float}; `combined`: {unit_type: (jaccard, cosine)} and
    `aligned`: {unit_type: (aligned, small_edits, cosine)} (see decide), with `alignment` the pair's
    (aligned, small_edits) or None; `contained`: {unit_type: (containment, cosine, shared)} over the
    pair's `containment` and `shared` shingles (see decide); `rules`: {unit_type: Rule} replacing them. Shared by
    MergeSignals and the draft check (service/), so both decide alike."""
    cos = round(float(cos), 6) if cos is not None else None
    jac = round(float(jac), 6) if jac is not None else None
    margin = round(cos / float(around), 6) if cos is not None and around and around > 0 else None
    rules = rules or {}
    if kind in rules:
        al, small = alignment if alignment is not None else (None, None)
        rule = rules[kind].text if rules[kind](cosine=cos, jaccard=jac, margin=margin, aligned=al, small_edits=small,
                                               containment=containment) else ""
    else:
        rule = decide(cos, jac, _of_type(cosine_threshold, kind), _of_type(jaccard_threshold, kind), margin,
                      _of_type(margin_threshold, kind, 0.0), (combined or {}).get(kind), alignment,
                      (aligned or {}).get(kind), containment, (contained or {}).get(kind), shared)
    return cos, jac, margin, rule


SCORED_TAG = "scored"


class MergeSignals(beam.PTransform):
    """Pair dicts from each search -> {"pairs": one evidence row per (doc_a, doc_b) a rule keeps,
    "scored": (unit_type, cosine, jaccard, kept) of every candidate scored, kept or not (the score
    distributions of the run report)}."""

    def __init__(self, *, vectors, signatures, cosine_threshold, jaccard_threshold, rules=None,
                 neighbourhood=None, margin_threshold=0.0, combined=None, tokens=None, aligned=None,
                 contained=None):
        """Thresholds: a float, or {unit_type: float} when the pairs are units (ids as in units.py);
        unit pairs of the same document, and pairs of two unit types, are dropped. `rules`
        ({unit_type: rules.Rule}) replaces the thresholds' OR for the types it names.
        neighbourhood: (id, mean top-k cosine) from the kNN stage, or None (no margins);
        margin_threshold: a float or {unit_type: float} (0: cosine needs no margin);
        combined: {unit_type: (jaccard, cosine)} deciding together (see decide), or None;
        tokens: (document unit id, word sequence) for the alignment of document pairs, or None;
        aligned: {unit_type: (aligned, small_edits, cosine)} deciding together (see decide), or None;
        contained: {unit_type: (containment, cosine, shared)} of the containment clause (see decide), or None."""
        super().__init__()
        self.contained = contained or {}
        self.tokens, self.aligned = tokens, aligned or {}
        self.combined = combined or {}
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
        margin_by_type, combined, aligned, contained = self.margin_threshold, self.combined, self.aligned, self.contained
        methods = (found_pairs
                   | "AllFound" >> beam.Flatten()
                   | "KeyFound" >> beam.Map(lambda p: ((p["doc_a"], p["doc_b"]), p["method"])))
        pairs = (methods | "PairKeys" >> beam.Keys() | "DistinctPairs" >> beam.Distinct())
        vec_by_id = self.vectors | "VectorById" >> beam.Map(
            lambda r: (r["id"], np.asarray(r["vector"], dtype=np.float32)))
        ids_by_id = self.signatures | "ShinglesById" >> beam.Map(lambda s: (s["id"], s["ids"]))
        cosines = pairs | "Cosine" >> JoinPairScores(vec_by_id, cosine, namespace="merge_cosine")
        jaccards = pairs | "Jaccard" >> JoinPairScores(ids_by_id, overlap, namespace="merge_jaccard")
        evidence = {"method": methods, "cosine": cosines, "jaccard": jaccards}
        if self.neighbourhood is not None:
            evidence["neighbourhood"] = pairs | "Neighbourhood" >> JoinPairScores(
                self.neighbourhood, lambda a, b: (a + b) / 2.0, namespace="merge_margin")
        if self.tokens is not None:
            documents = pairs | "DocumentPairs" >> beam.Filter(
                lambda p: parse_unit_id(p[0])[1] == "document" == parse_unit_id(p[1])[1])
            evidence["alignment"] = documents | "Alignment" >> JoinPairScores(self.tokens, align, namespace="merge_alignment")

        def to_row(element):
            (a, b), g = element
            (doc_a, kind), (doc_b, kind_b) = parse_unit_id(a), parse_unit_id(b)
            if kind != kind_b or (kind != "document" and doc_a == doc_b):
                return
            around, alignment = g.get("neighbourhood"), g.get("alignment")
            alignment = alignment[0] if alignment else None
            jac, containment, shared = g["jaccard"][0] if g["jaccard"] else (None, None, None)
            cos, jac, margin, rule = score_pair(
                kind, g["cosine"][0] if g["cosine"] else None, jac,
                around[0] if around else None, cosine_threshold=cos_by_type, jaccard_threshold=jac_by_type,
                rules=rules, margin_threshold=margin_by_type, combined=combined, alignment=alignment, aligned=aligned,
                containment=containment, contained=contained, shared=shared)
            yield beam.pvalue.TaggedOutput(SCORED_TAG, (kind, cos, jac, bool(rule)))
            if not rule:
                return
            yield {"doc_a": a, "doc_b": b, "cosine": cos, "jaccard": jac,
                   "containment": round(containment, 6) if containment is not None else None, "margin": margin,
                   "aligned": alignment[0] if alignment else None, "small_edits": alignment[1] if alignment else None,
                   "method": "+".join(sorted(set(g["method"]))), "rule": rule}

        result = (evidence
                  | "JoinEvidence" >> beam.CoGroupByKey()
                  | "ToRow" >> beam.FlatMap(to_row).with_outputs(SCORED_TAG, main="pairs"))
        return {"pairs": result["pairs"], "scored": result[SCORED_TAG]}
