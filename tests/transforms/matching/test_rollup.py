import json
import pytest

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.matching.merge import decide
from transforms.matching.rollup import RollUpMatches, covered_chars, roll_up
from transforms.text.units import parse_unit_id


def test_unit_ids_parse_back_to_document_and_type():
    assert parse_unit_id("doc-1#p3") == ("doc-1", "paragraph")
    assert parse_unit_id("a#b#s12") == ("a#b", "sentence")
    assert parse_unit_id("plain#id") == ("plain#id", "document")


def test_decision_rule_names_what_fired():
    assert decide(0.95, 0.2, 0.9, 0.5) == "cosine>=0.9"
    assert decide(0.95, 0.7, 0.9, 0.5) == "jaccard>=0.5 AND cosine>=0.9"
    assert decide(0.5, None, 0.9, 0.5) == ""


def test_coverage_is_the_union_of_matched_spans():
    assert covered_chars([(0, 10), (5, 20), (30, 40)]) == 30
    row = roll_up("a", "b", [
        {"unit_a": "a#p0", "unit_b": "b#p3", "unit_type": "paragraph", "a_start": 0, "a_end": 50, "b_start": 100,
         "b_end": 150, "cosine": 0.97, "jaccard": 0.8, "method": "knn+minhash", "rule": "r1"},
        {"unit_a": "a#p1", "unit_b": "b#p4", "unit_type": "paragraph", "a_start": 40, "a_end": 80, "b_start": 150,
         "b_end": 190, "cosine": 0.99, "jaccard": 0.9, "method": "knn", "rule": "r2"}], {"a": 100, "b": 400})
    assert (row["coverage_a"], row["coverage_b"], row["matched_units"]) == (0.8, 0.225, 2)
    assert row["granularity"] == "paragraph" and row["rule"] == "paragraph: r2" and row["method"] == "knn+minhash"
    assert [e["unit_a"] for e in json.loads(row["evidence"])] == ["a#p1", "a#p0"]


@pytest.mark.slow
def test_rollup_orients_pairs_by_document_and_groups_them():
    units = [{"id": "b#p0", "doc_id": "b", "unit_type": "paragraph", "start": 0, "end": 10, "doc_chars": 20},
             {"id": "a#p2", "doc_id": "a", "unit_type": "paragraph", "start": 30, "end": 40, "doc_chars": 40},
             {"id": "b#p1", "doc_id": "b", "unit_type": "paragraph", "start": 10, "end": 20, "doc_chars": 20},
             {"id": "a#p0", "doc_id": "a", "unit_type": "paragraph", "start": 0, "end": 10, "doc_chars": 40}]
    pairs = [{"doc_a": "a#p2", "doc_b": "b#p0", "cosine": 0.95, "jaccard": 0.6, "method": "knn", "rule": "x"},
             {"doc_a": "a#p0", "doc_b": "b#p1", "cosine": 0.92, "jaccard": 0.7, "method": "minhash", "rule": "y"}]
    with TestPipeline() as p:
        out = p | "Pairs" >> beam.Create(pairs) | RollUpMatches(units=p | "Units" >> beam.Create(units))
        assert_that(out["documents"] | "D" >> beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["matched_units"],
                                                                  r["coverage_a"], r["coverage_b"], r["cosine"])),
                    equal_to([("a", "b", 2, 0.5, 1.0, None)]), label="docs")
        assert_that(out["units"] | "U" >> beam.Map(lambda r: (r["unit_a"], r["unit_b"], r["a_start"], r["b_start"])),
                    equal_to([("a#p2", "b#p0", 30, 0), ("a#p0", "b#p1", 0, 10)]), label="units")


def _match(unit_a, unit_b, kind, a_span, b_span):
    return {"unit_a": unit_a, "unit_b": unit_b, "unit_type": kind, "a_start": a_span[0], "a_end": a_span[1],
            "b_start": b_span[0], "b_end": b_span[1], "cosine": 0.99, "jaccard": 0.9, "margin": 1.4,
            "method": "knn+minhash", "rule": "jaccard>=0.5"}


def test_relation_says_whole_document_or_reused_passage():
    chars = {"a": 1000, "b": 1000}
    passage = roll_up("a", "b", [_match("a#p1", "b#p4", "paragraph", (0, 200), (300, 500))], chars)
    assert passage["relation"] == "passage" and passage["coverage_a"] == 0.2
    whole = roll_up("a", "b", [_match("a", "b", "document", (0, 1000), (0, 1000)),
                               _match("a#p1", "b#p4", "paragraph", (0, 200), (300, 500))], chars)
    assert whole["relation"] == "duplicate" and whole["margin"] == 1.4
    # Passages covering most of both documents: a whole-document duplicate whose document vectors missed.
    most = [_match(f"a#p{i}", f"b#p{i}", "paragraph", (i * 100, i * 100 + 100), (i * 100, i * 100 + 100))
            for i in range(9)]
    assert roll_up("a", "b", most, chars)["relation"] == "duplicate"
    assert roll_up("a", "b", most, chars, duplicate_coverage=0.95)["relation"] == "passage"


def test_containment_clause_decides_passage_reuse_last():
    from transforms.matching.merge import is_passage_rule
    clause = (0.3, 0.55, 30)
    # an answer cut from a three-times longer article: low Jaccard, most of its shingles in the article
    assert decide(0.8, 0.3, 0.85, 0.6, containment=0.9, contained=clause, shared=120) == \
        "containment>=0.3 WITH cosine>=0.55 WITH shared>=30"
    assert decide(0.5, 0.3, 0.85, 0.6, containment=0.9, contained=clause, shared=120) == ""  # under the cosine floor
    assert decide(0.8, 0.3, 0.85, 0.6, containment=0.25, contained=clause, shared=120) == ""
    # a navigation line that is half of a tiny page is no passage
    assert decide(0.8, 0.3, 0.85, 0.6, containment=0.5, contained=clause, shared=8) == ""
    assert decide(0.8, 0.3, 0.85, 0.6, containment=0.5, contained=(0.3, 0.55, 0), shared=8) == \
        "containment>=0.3 WITH cosine>=0.55"
    assert decide(0.8, 0.3, 0.85, 0.6, containment=0.9, shared=120) == ""  # clause off
    # a whole-document clause that fires wins: the pair stays a duplicate
    assert decide(0.9, 0.7, 0.85, 0.6, containment=0.9, contained=clause, shared=120) == "jaccard>=0.6 AND cosine>=0.85"
    assert is_passage_rule("containment>=0.3 WITH cosine>=0.55") and not is_passage_rule("jaccard>=0.6")


def test_contained_document_pair_is_passage_reuse_with_shingle_coverage():
    from transforms.matching.rollup import with_shares
    chars = {"a": 300, "b": 1200}
    contained = dict(_match("a", "b", "document", (0, 300), (0, 1200)), rule="containment>=0.3 WITH cosine>=0.55")
    row = roll_up("a", "b", [contained], chars)
    assert row["relation"] == "passage" and row["rule"] == "document: containment>=0.3 WITH cosine>=0.55"
    assert row["granularity"] == "document" and row["matched_units"] == 0
    row = with_shares(row, (0.92, 0.21))
    assert (row["relation"], row["coverage_a"], row["coverage_b"]) == ("passage", 0.92, 0.21)
    # a matched paragraph covering more of a side than its shingle share keeps its own coverage
    para = _match("a#p0", "b#p2", "paragraph", (0, 300), (0, 300))
    row = with_shares(roll_up("a", "b", [contained, para], chars), (0.92, 0.21))
    assert (row["coverage_a"], row["coverage_b"], row["rule"]) == (1.0, 0.25, "paragraph: jaccard>=0.5")
    # most of both documents' shingles shared: a whole-document duplicate after all
    assert with_shares(roll_up("a", "b", [contained], chars), (0.85, 0.81))["relation"] == "duplicate"
    # rows another clause decided are left as they are
    whole = roll_up("a", "b", [_match("a", "b", "document", (0, 300), (0, 1200))], chars)
    assert with_shares(whole, (0.2, 0.1)) == whole
