import json

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from transforms.matching.common_source import CommonSourcePairs, sibling_pairs, upgrade


def _row(a, b, relation="duplicate", **kw):
    return {"doc_a": a, "doc_b": b, "relation": relation, "granularity": "document", "cosine": 0.9,
            "jaccard": 0.7, "method": "knn", "rule": "jaccard>=0.6", "evidence": "[]", **kw}


def test_sibling_pairs_are_every_pair_of_partners_and_none_past_the_limit():
    assert list(sibling_pairs("s", ["c", "a", "b", "a"])) == [(("a", "b"), "s"), (("a", "c"), "s"), (("b", "c"), "s")]
    assert list(sibling_pairs("s", ["a"])) == []
    assert list(sibling_pairs("s", [str(i) for i in range(4)], max_partners=3)) == []


def test_upgrade_adds_or_upgrades_only_above_the_cosine():
    passage = _row("a", "b", "passage", rule="paragraph: jaccard>=0.5")
    up = upgrade(("a", "b"), [passage], ["s2", "s1"], 0.9, 0.4, 0.55)
    assert up[0]["relation"] == "duplicate" and up[0]["rule"].startswith("common source s1:")
    assert up[0]["method"] == "knn+common_source" and up[0]["evidence"] == "[]"
    assert upgrade(("a", "b"), [passage], ["s1"], 0.5, 0.4, 0.55) == [passage]
    new = upgrade(("a", "b"), [], ["s1"], 0.7, None, 0.55)
    assert new[0]["relation"] == "duplicate" and new[0]["method"] == "common_source"
    assert json.loads(new[0]["evidence"]) == [{"common_source": "s1"}]
    assert upgrade(("a", "b"), [], [], 0.99, 0.9, 0.55) == []
    dup = _row("a", "b")
    assert upgrade(("a", "b"), [dup], ["s1"], 0.99, 0.9, 0.55) == [dup]


def test_two_copies_of_one_source_become_a_pair_and_nothing_else_changes():
    """s has two duplicates a and b that did not match each other (a passage row only); c and d are
    duplicates of t, but far apart (cosine below the floor); e-f is passage reuse with no common
    source. Only a-b changes, upgraded in place: no row is lost or doubled."""
    unit = lambda v: np.asarray(v, dtype=np.float32) / np.linalg.norm(v)
    vectors = {"s": [1, 0.1, 0], "a": [1, 0.3, 0], "b": [1, 0, 0.3], "t": [0, 1, 1], "c": [0, 1, 0], "d": [0, 0, 1],
               "e": [1, 1, 1], "f": [1, 1, 0.9]}
    rows = [_row("a", "s"), _row("b", "s"), _row("a", "b", "passage"), _row("c", "t"), _row("d", "t"),
            _row("e", "f", "passage")]
    with TestPipeline() as p:
        vec = p | "V" >> beam.Create([{"id": k, "vector": unit(v).tolist()} for k, v in vectors.items()])
        sig = p | "S" >> beam.Create([{"id": k, "ids": np.arange(i, i + 10, dtype=np.uint64)}
                                      for i, k in enumerate(vectors)])
        out = p | beam.Create(rows) | CommonSourcePairs(vec, sig, min_cosine=0.55)

        def check(got):
            by = {(r["doc_a"], r["doc_b"]): r for r in got}
            assert len(got) == len(rows) == len(by), got
            assert by[("a", "b")]["relation"] == "duplicate"
            assert by[("a", "b")]["rule"].startswith("common source s:")
            assert ("c", "d") not in by
            assert by[("e", "f")]["relation"] == "passage"
            assert {k: r for k, r in by.items() if k != ("a", "b")} == \
                {(r["doc_a"], r["doc_b"]): r for r in rows if (r["doc_a"], r["doc_b"]) != ("a", "b")}

        assert_that(out, check)


def test_a_source_without_a_direct_row_gets_a_new_row_with_its_scores():
    unit = lambda v: (np.asarray(v, dtype=np.float32) / np.linalg.norm(v)).tolist()
    with TestPipeline() as p:
        vec = p | "V" >> beam.Create([{"id": "s", "vector": unit([1, 0])}, {"id": "a", "vector": unit([1, 0.2])},
                                      {"id": "b", "vector": unit([1, -0.2])}])
        sig = p | "S" >> beam.Create([{"id": "a", "ids": np.array([1, 2, 3, 4], dtype=np.uint64)},
                                      {"id": "b", "ids": np.array([3, 4, 5, 6], dtype=np.uint64)}])
        out = p | beam.Create([_row("a", "s"), _row("b", "s")]) | CommonSourcePairs(vec, sig)

        def check(got):
            new = [r for r in got if (r["doc_a"], r["doc_b"]) == ("a", "b")]
            assert len(got) == 3 and len(new) == 1, got
            assert new[0]["method"] == "common_source" and abs(new[0]["jaccard"] - 2 / 6) < 1e-6
            assert abs(new[0]["cosine"] - float(np.dot(unit([1, 0.2]), unit([1, -0.2])))) < 1e-5

        assert_that(out, check)
