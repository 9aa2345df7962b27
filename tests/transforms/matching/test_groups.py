import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.matching.groups import ConnectedComponents, DuplicateGroups, canonical_key, group_id


def check_labels(edges, expected, rounds=24):
    with TestPipeline() as p:
        labels = p | beam.Create(edges) | ConnectedComponents(rounds)
        assert_that(labels, equal_to(sorted(expected.items())))


@pytest.mark.slow
def test_chains_stars_and_separate_components():
    edges = [("c", "d"), ("a", "b"), ("b", "c"), ("x", "y"), ("s", "t1"), ("s", "t2"), ("t3", "s")]
    check_labels(edges, {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x",
                         "s": "s", "t1": "s", "t2": "s", "t3": "s"})


@pytest.mark.slow
def test_a_shuffled_chain_of_10k_nodes_is_one_component():
    n = 10_000
    ids = [f"n{i:05d}" for i in range(n)]
    order = ids[:]
    random.Random(0).shuffle(order)
    edges = [(order[i], order[i + 1]) for i in range(n - 1)]
    with TestPipeline() as p:
        labels = p | beam.Create(edges) | ConnectedComponents(24)
        summary = labels | beam.Values() | beam.combiners.Count.PerElement()
        assert_that(summary, equal_to([("n00000", n)]))


def test_too_few_rounds_fail_loudly_instead_of_writing_wrong_groups():
    edges = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(300)]
    with pytest.raises(Exception, match="did not converge"):
        with TestPipeline() as p:
            _ = p | beam.Create(edges) | ConnectedComponents(rounds=1)


def test_canonical_policies():
    a = {"id": "b", "published_at": "2025-01-01", "chars": 100, "url": "https://b.invalid/b"}
    b = {"id": "a", "published_at": "2025-06-01", "chars": 500, "url": "https://example.org/cursos/a"}
    c = {"id": "c", "published_at": None, "chars": 500, "url": None}
    pick = lambda policy, url="": sorted([a, b, c], key=lambda m: canonical_key(m, policy, url))[0]["id"]
    assert pick(("earliest",)) == "b"
    assert pick(("longest", "smallest_id")) == "a"
    assert pick(("preferred_url", "earliest"), r"example\.org/cursos") == "a"
    assert pick(("smallest_id",)) == "a"


@pytest.mark.slow
def test_groups_and_annotated_pairs():
    docs = [{"id": i, "text": "x" * n, "published_at": d, "url": None}
            for i, n, d in (("a", 10, "2025-03-01"), ("b", 50, "2025-01-01"), ("c", 20, None), ("d", 5, None),
                            ("e", 5, None))]
    pairs = [{"doc_a": "a", "doc_b": "b"}, {"doc_a": "b", "doc_b": "c"}, {"doc_a": "d", "doc_b": "e"}]
    with TestPipeline() as p:
        out = p | "Pairs" >> beam.Create(pairs) | DuplicateGroups(p | "Docs" >> beam.Create(docs))
        assert_that(out["groups"] | "G" >> beam.Map(lambda g: (g["canonical_id"], g["size"], tuple(g["members"]))),
                    equal_to([("b", 3, ("a", "b", "c")), ("d", 2, ("d", "e"))]), label="groups")
        assert_that(out["pairs"] | "P" >> beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["group_id"], r["canonical_id"])),
                    equal_to([("a", "b", group_id("a"), "b"), ("b", "c", group_id("a"), "b"),
                              ("d", "e", group_id("d"), "d")]), label="pairs")


@pytest.mark.slow
def test_passage_rows_join_no_group_and_get_no_group_id():
    """Two pages that each reuse a passage of a third are not one group: groups come from whole-document
    duplicates only; passage rows pass through with no group."""
    docs = [{"id": d, "text": "x" * 10} for d in "abcde"]
    pairs = [{"doc_a": "a", "doc_b": "b", "relation": "duplicate"},
             {"doc_a": "b", "doc_b": "c", "relation": "passage"},
             {"doc_a": "c", "doc_b": "d", "relation": "passage"},
             {"doc_a": "d", "doc_b": "e"}]  # rows without a relation count as duplicates
    with TestPipeline() as p:
        out = p | beam.Create(pairs) | DuplicateGroups(p | "Docs" >> beam.Create(docs))
        assert_that(out["groups"] | beam.Map(lambda g: g["members"]), equal_to([["a", "b"], ["d", "e"]]), label="groups")
        assert_that(out["pairs"] | beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["group_id"] is None)),
                    equal_to([("a", "b", False), ("b", "c", True), ("c", "d", True), ("d", "e", False)]),
                    label="pairs")
