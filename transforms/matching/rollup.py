"""Rolling unit-level matches up to document pairs, with coverage and the copied passages.

    rolled = unit_pairs | RollUpMatches(units=unit_meta, doc_vectors=..., doc_signatures=...)
    rolled["documents"], rolled["units"]

Input: merged unit-pair rows {"doc_a": unit id, "doc_b": unit id, "cosine", "jaccard", "method",
"rule"} and unit metadata {"id", "doc_id", "unit_type", "start", "end", "doc_chars"}.
Outputs:
- unit matches: {"unit_a", "unit_b", "doc_a", "doc_b" (doc_a < doc_b, sides swapped to match),
  "unit_type", "a_start", "a_end", "b_start", "b_end", "cosine", "jaccard", "method", "rule"};
- document pairs: {"doc_a", "doc_b", "relation" ("duplicate": the documents matched as a whole, or
  matched passages cover at least `duplicate_coverage` of both; else "passage": a passage of one is
  reused in the other, found by matched paragraphs/sentences or by the containment clause of
  merge.py, whose coverage is each document's share of shingles found in the other),
  "granularity" (unit types that matched, e.g. "document+paragraph"),
  "cosine", "jaccard" (document level, computed for every pair where document vectors/shingles
  exist), "method", "rule", "matched_units", "coverage_a", "coverage_b" (share of each document's
  characters inside matched units; 1.0 when the documents matched as a whole), "evidence" (JSON:
  the best unit matches with their offsets)}.
"""
from __future__ import annotations

import json

import apache_beam as beam
import numpy as np

from transforms.matching.merge import cosine, is_passage_rule
from transforms.signals.minhash import shingle_overlap
from transforms.matching.pair_join import JoinPairScores

EVIDENCE_LIMIT = 5


def covered_chars(spans: list[tuple[int, int]]) -> int:
    """Length of the union of [start, end) spans."""
    total, current_start, current_end = 0, None, None
    for start, end in sorted(spans):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def roll_up(doc_a: str, doc_b: str, matches: list[dict], doc_chars: dict, duplicate_coverage: float = 0.8) -> dict:
    """All unit matches of one document pair -> the document-pair row (without document scores; a
    pair decided by the containment clause gets its coverage in with_shares)."""
    kinds = sorted({m["unit_type"] for m in matches}, key=["document", "paragraph", "sentence"].index)
    document = next((m for m in matches if m["unit_type"] == "document"), None)
    whole = document if document is not None and not is_passage_rule(document["rule"]) else None
    parts = [m for m in matches if m["unit_type"] != "document"]

    def coverage(side):
        if whole is not None:
            return 1.0
        chars = doc_chars.get(side == "a" and doc_a or doc_b) or 0
        spans = [(m[f"{side}_start"], m[f"{side}_end"]) for m in parts]
        return round(covered_chars(spans) / chars, 4) if chars else None

    def strength(m):
        return (m["cosine"] or 0.0) + (m["jaccard"] or 0.0)

    best = sorted(parts, key=lambda m: (-strength(m), m["unit_a"], m["unit_b"]))[:EVIDENCE_LIMIT]
    if whole is not None:
        rule = whole["rule"]
    elif best:
        rule = f"{best[0]['unit_type']}: {best[0]['rule']}"
    else:
        rule = f"document: {document['rule']}"
    methods = sorted({x for m in matches for x in m["method"].split("+")})
    cov_a, cov_b = coverage("a"), coverage("b")
    whole_by_passages = cov_a is not None and cov_b is not None and min(cov_a, cov_b) >= duplicate_coverage
    return {
        "doc_a": doc_a, "doc_b": doc_b, "relation": "duplicate" if whole is not None or whole_by_passages else "passage",
        "margin": whole.get("margin") if whole is not None else None,
        "aligned": document.get("aligned") if document is not None else None,
        "small_edits": document.get("small_edits") if document is not None else None,
        "granularity": "+".join(kinds), "method": "+".join(methods),
        "rule": rule, "matched_units": len(parts), "coverage_a": cov_a, "coverage_b": cov_b,
        "evidence": json.dumps([{k: m[k] for k in ("unit_a", "unit_b", "unit_type", "a_start", "a_end", "b_start",
                                                  "b_end", "cosine", "jaccard")} for m in best], ensure_ascii=False),
    }


def with_shares(row: dict, shares, duplicate_coverage: float = 0.8) -> dict:
    """A document-pair row + (share of doc_a's shingles in doc_b, share of doc_b's in doc_a) -> the row
    with those shares as coverage where the containment clause decided it (its passage is known by
    its shingles, not by matched units), and its relation again from that coverage."""
    # a passage row whose documents matched as a whole: only the containment clause makes one
    if shares is None or row["relation"] != "passage" or "document" not in row["granularity"].split("+"):
        return row
    cov_a = max(row["coverage_a"] or 0.0, round(shares[0], 4))
    cov_b = max(row["coverage_b"] or 0.0, round(shares[1], 4))
    relation = "duplicate" if min(cov_a, cov_b) >= duplicate_coverage else "passage"
    return {**row, "coverage_a": cov_a, "coverage_b": cov_b, "relation": relation}


class RollUpMatches(beam.PTransform):
    """Merged unit-pair rows -> {"documents": document-pair rows, "units": unit-match rows}."""

    def __init__(self, *, units, doc_vectors=None, doc_signatures=None, duplicate_coverage: float = 0.8):
        super().__init__()
        self.duplicate_coverage = duplicate_coverage
        self.units = units
        self.doc_vectors = doc_vectors
        self.doc_signatures = doc_signatures

    def expand(self, unit_pairs):
        duplicate_coverage = self.duplicate_coverage
        meta = self.units | "UnitMeta" >> beam.Map(
            lambda u: (u["id"], (u["doc_id"], u["unit_type"], u["start"], u["end"], u["doc_chars"])))
        keyed_rows = unit_pairs | "KeyUnitPair" >> beam.Map(lambda r: ((r["doc_a"], r["doc_b"]), r))
        metas = (unit_pairs | "UnitPairKeys" >> beam.Map(lambda r: (r["doc_a"], r["doc_b"]))
                 | "AttachMeta" >> JoinPairScores(meta, lambda a, b: (a, b), namespace="rollup"))

        def to_unit_match(element):
            (ua, ub), g = element
            if not g["row"] or not g["meta"]:
                return
            row, (ma, mb) = g["row"][0], g["meta"][0]
            if ma[0] > mb[0]:  # orient by document id
                ua, ub, ma, mb = ub, ua, mb, ma
            yield {"unit_a": ua, "unit_b": ub, "doc_a": ma[0], "doc_b": mb[0], "unit_type": ma[1],
                   "a_start": ma[2], "a_end": ma[3], "b_start": mb[2], "b_end": mb[3],
                   "doc_chars_a": ma[4], "doc_chars_b": mb[4], "cosine": row["cosine"],
                   "jaccard": row["jaccard"], "margin": row.get("margin"), "aligned": row.get("aligned"),
                   "small_edits": row.get("small_edits"), "method": row["method"], "rule": row["rule"]}

        matches = ({"row": keyed_rows, "meta": metas} | "JoinUnitMeta" >> beam.CoGroupByKey()
                   | "ToUnitMatch" >> beam.FlatMap(to_unit_match))

        def to_doc_row(element):
            (doc_a, doc_b), group = element
            group = list(group)
            chars = {doc_a: group[0]["doc_chars_a"], doc_b: group[0]["doc_chars_b"]}
            return (doc_a, doc_b), roll_up(doc_a, doc_b, group, chars, duplicate_coverage)

        doc_rows = (matches | "KeyDocPair" >> beam.Map(lambda m: ((m["doc_a"], m["doc_b"]), m))
                    | "GroupDocPair" >> beam.GroupByKey() | "RollUp" >> beam.Map(to_doc_row))
        doc_pairs = doc_rows | "DocPairKeys" >> beam.Keys()
        scores = {"row": doc_rows}
        if self.doc_vectors is not None:
            vec = self.doc_vectors | "DocVectorById" >> beam.Map(
                lambda r: (r["id"], np.asarray(r["vector"], dtype=np.float32)))
            scores["cosine"] = doc_pairs | "DocCosine" >> JoinPairScores(vec, cosine, namespace="rollup_cosine")
        if self.doc_signatures is not None:
            ids = self.doc_signatures | "DocShinglesById" >> beam.Map(lambda s: (s["id"], s["ids"]))
            scores["jaccard"] = doc_pairs | "DocJaccard" >> JoinPairScores(ids, shingle_overlap, namespace="rollup_jaccard")

        def with_doc_scores(element):
            _, g = element
            row = dict(g["row"][0])
            row["cosine"] = round(float(g["cosine"][0]), 6) if g.get("cosine") else None
            overlap = g["jaccard"][0] if g.get("jaccard") else None
            row["jaccard"] = round(float(overlap[0]), 6) if overlap else None
            return with_shares(row, overlap[1:] if overlap else None, duplicate_coverage)

        documents = scores | "JoinDocScores" >> beam.CoGroupByKey() | "WithDocScores" >> beam.Map(with_doc_scores)
        units = matches | "DropDocChars" >> beam.Map(
            lambda m: {k: v for k, v in m.items() if k not in ("doc_chars_a", "doc_chars_b")})
        return {"documents": documents, "units": units}
