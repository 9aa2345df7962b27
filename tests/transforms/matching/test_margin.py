"""The margin: a cosine counts only when it stands out from both units' neighbourhoods; kNN searches
report those neighbourhoods; units of two types are never a pair."""
import apache_beam as beam
import pytest
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from pipelines.runner import OfflineDirectRunner
from transforms.matching.merge import MergeSignals, decide
from transforms.matching.rules import Rule
from transforms.matching.vector_memory import ExactKnnDuplicates, exact_neighbours


def test_decide_needs_the_margin_for_a_cosine_decision():
    assert decide(0.88, 0.01, 0.85, 0.5, margin=1.02, margin_threshold=1.1) == ""
    assert decide(0.88, 0.01, 0.85, 0.5, margin=1.3, margin_threshold=1.1) == "cosine>=0.85 (margin>=1.1)"
    assert decide(0.88, 0.6, 0.85, 0.5, margin=1.0, margin_threshold=1.1) == "jaccard>=0.5"  # lexical needs none
    assert decide(0.88, 0.01, 0.85, 0.5, margin=None, margin_threshold=1.1) == "cosine>=0.85"  # unknown: as before
    assert Rule("cosine >= 0.8 and margin >= 1.2")(cosine=0.9, margin=1.25)
    assert not Rule("cosine >= 0.8 and margin >= 1.2")(cosine=0.9)


def test_the_combined_clause_needs_both_signals_and_no_margin():
    combined = (0.45, 0.85)
    # A page and its lightly edited copy: neither signal alone, both together (a same-topic margin).
    assert decide(0.9, 0.47, 0.85, 0.6, margin=1.05, margin_threshold=1.5,
                  combined=combined) == "jaccard>=0.45 WITH cosine>=0.85"
    assert decide(0.9, 0.47, 0.85, 0.6, margin=1.05, margin_threshold=1.5) == ""       # clause off
    assert decide(0.84, 0.55, 0.85, 0.6, combined=combined) == ""                       # cosine short
    assert decide(0.99, 0.30, 0.85, 0.6, margin=1.3, margin_threshold=1.5, combined=combined) == ""  # jaccard short
    assert decide(0.9, 0.7, 0.85, 0.6, margin=1.1, margin_threshold=1.5,
                  combined=combined) == "jaccard>=0.6"                                    # a single signal names itself


def test_exact_search_reports_neighbourhood_means():
    v = np.eye(3, dtype=np.float32)
    v[1] = [0.6, 0.8, 0.0]
    means = {}
    exact_neighbours(["a", "b", "c"], v, k=2, min_cosine=0.5, means=means)
    assert {k: round(v, 6) for k, v in means.items()} == {"a": 0.3, "b": 0.3, "c": 0.0}  # a: (0.6 + 0) / 2


def _unit(uid, unit_type, vec):
    return {"id": uid, "doc_id": uid.split("#")[0], "unit_type": unit_type, "vector": np.asarray(vec, np.float32)}


@pytest.mark.slow
def test_units_of_two_types_are_never_paired():
    """A document's vector equal to another document's paragraph is not a match (the ES search filters
    by type; the exact search and the merge do too)."""
    units = [_unit("a", "document", [1, 0]), _unit("b#p0", "paragraph", [1, 0]), _unit("c", "document", [0, 1])]
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        out = p | beam.Create(units) | ExactKnnDuplicates(k=2, min_cosine=0.5, with_neighbourhood=True)
        assert_that(out["pairs"], equal_to([]), label="pairs")
        merged = ((p | "Cross" >> beam.Create([{"doc_a": "a", "doc_b": "b#p0", "method": "knn"}]),)
                  | MergeSignals(vectors=p | "V" >> beam.Create(units), signatures=p | "S" >> beam.Create([]),
                                 cosine_threshold=0.5, jaccard_threshold=0.5))
        assert_that(merged["pairs"], equal_to([]), label="merged")
        assert_that(merged["scored"], equal_to([]), label="scored")


@pytest.mark.slow
def test_merge_keeps_a_standout_cosine_and_drops_a_usual_one():
    """Same cosine 0.9, two neighbourhoods: around 0.88 (a site's same-topic pages) it is dropped,
    around 0.5 it is kept, with its margin."""
    def vec(c):
        return [c, float(np.sqrt(1 - c * c))]
    units = [_unit("a", "document", [1, 0]), _unit("b", "document", vec(0.9)),
             _unit("x", "document", [1, 0]), _unit("y", "document", vec(0.9))]
    neighbourhood = [("a", 0.88), ("b", 0.88), ("x", 0.5), ("y", 0.5)]
    found = [{"doc_a": "a", "doc_b": "b", "method": "knn"}, {"doc_a": "x", "doc_b": "y", "method": "knn"}]
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        merged = ((p | "Found" >> beam.Create(found),)
                  | MergeSignals(vectors=p | "V" >> beam.Create(units), signatures=p | "S" >> beam.Create([]),
                                 cosine_threshold={"document": 0.85}, jaccard_threshold={"document": 0.5},
                                 neighbourhood=p | "N" >> beam.Create(neighbourhood),
                                 margin_threshold={"document": 1.1}))
        assert_that(merged["pairs"] | beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["margin"], r["rule"])),
                    equal_to([("x", "y", 1.8, "cosine>=0.85 (margin>=1.1)")]))
        # every candidate is scored, the dropped one too (the report's score distributions)
        assert_that(merged["scored"], equal_to([("document", 0.9, None, False), ("document", 0.9, None, True)]),
                    label="scored")
