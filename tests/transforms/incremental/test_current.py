"""The catalogue's current pairs and groups: which stored pairs survive, lineage of groups, state actions."""
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.incremental.current import (CatalogueMeta, CurrentPairs, GroupLineage, PairStateActions, WithEndMeta,
                                            pair_id)
from transforms.matching.groups import DuplicateGroups


def pair(a, b, relation="duplicate", **extra):
    return {"doc_a": a, "doc_b": b, "relation": relation, "cosine": 0.99, **extra}


def test_stored_pairs_of_affected_documents_are_replaced_and_the_rest_kept():
    stored = [pair("a", "b", group_id="g-old", meta_a={"id": "a"}), pair("c", "d", group_id="g-cd"),
              pair("d", "e", relation="passage"), pair("x", "y", group_id="g-xy")]
    found = [{**pair("a", "b"), "cosine": 0.95}, pair("c", "z")]  # a, b changed; c gained a copy z
    with TestPipeline() as p:
        rows = ({"found": p | "F" >> beam.Create(found), "stored": p | "S" >> beam.Create(stored),
                 "affected": p | "A" >> beam.Create(["a", "c", "z"])} | CurrentPairs())
        assert_that(rows | beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["cosine"], "group_id" in r, "meta_a" in r)),
                    equal_to([("a", "b", 0.95, False, False), ("c", "z", 0.99, False, False),
                              ("d", "e", 0.99, False, False), ("x", "y", 0.99, False, False)]))


def test_deleted_documents_lose_their_pairs_even_when_nothing_is_found():
    stored = [pair("a", "b"), pair("b", "c"), pair("x", "y")]
    with TestPipeline() as p:
        rows = ({"found": p | "F" >> beam.Create([]), "stored": p | "S" >> beam.Create(stored),
                 "affected": p | "A" >> beam.Create(["b"])} | CurrentPairs())
        assert_that(rows | beam.Map(lambda r: (r["doc_a"], r["doc_b"])), equal_to([("x", "y")]))


def test_meta_of_this_run_wins_and_unknown_ends_get_their_id():
    docs = [{"id": "a", "text": "abcd", "url": "u-new", "published_at": "2026-01-02"}]
    stored = [pair("a", "b", meta_a={"id": "a", "url": "u-old", "chars": 9, "published_at": None},
                   meta_b={"id": "b", "url": "ub", "chars": 3, "published_at": None})]
    with TestPipeline() as p:
        meta = {"docs": p | "D" >> beam.Create(docs), "stored": p | "S" >> beam.Create(stored)} | CatalogueMeta()
        assert_that(meta | "M" >> beam.Map(lambda m: (m["id"], m["url"], m["chars"])),
                    equal_to([("a", "u-new", 4), ("b", "ub", 3)]), label="meta")
        rows = p | "R" >> beam.Create([pair("a", "q")]) | WithEndMeta(meta)
        assert_that(rows | "E" >> beam.Map(lambda r: (r["meta_a"]["url"], r["meta_b"])),
                    equal_to([("u-new", {"id": "q"})]), label="ends")


def test_groups_keep_members_whose_metadata_is_unknown():
    with TestPipeline() as p:
        out = p | beam.Create([pair("a", "b")]) | DuplicateGroups(p | "D" >> beam.Create([{"id": "b", "text": "xx"}]))
        assert_that(out["groups"] | beam.Map(lambda g: (g["members"], g["canonical_id"])),
                    equal_to([(["a", "b"], "b")]))


def check_lineage(old_groups, new_groups, expected):
    """{gid: members} stored and current, {new gid: (previous_ids, change)} expected."""
    stored = [pair(ms[0], m, group_id=gid) for gid, ms in old_groups.items() for m in ms[1:]]
    stored.append(pair("p1", "p2", relation="passage"))  # passage rows carry no group
    groups = [{"group_id": gid, "canonical_id": ms[0], "size": len(ms), "members": sorted(ms)}
              for gid, ms in new_groups.items()]
    with TestPipeline() as p:
        out = ({"groups": p | "G" >> beam.Create(groups), "stored": p | "S" >> beam.Create(stored)} | GroupLineage())
        assert_that(out | beam.Map(lambda g: (g["group_id"], tuple(g["previous_ids"]), g["change"])),
                    equal_to([(gid, tuple(prev), change) for gid, (prev, change) in expected.items()]))


def test_lineage_says_how_each_group_relates_to_the_stored_ones():
    old = {"G1": ["a", "b"], "G2": ["c", "d", "e"], "G3": ["f", "g"], "G4": ["h", "i"], "G5": ["j", "k", "l", "m"],
           "G6": ["n", "o", "p"], "G7": ["q", "r"]}
    new = {"G1": ["a", "b"],                     # unchanged
           "N2": ["c", "d", "e", "z"],           # grown (z is new)
           "G3": ["f", "g", "h", "i"],           # merged G3 + G4
           "N5a": ["j", "k"], "N5b": ["l", "m"],  # split
           "G6": ["n", "o"],                     # shrunk (p left every group)
           "N7": ["q", "s"],                     # changed: r left, s came
           "N8": ["x", "y"]}                     # new
    check_lineage(old, new, {"G1": (["G1"], "unchanged"), "N2": (["G2"], "grown"), "G3": (["G3", "G4"], "merged"),
                             "N5a": (["G5"], "split"), "N5b": (["G5"], "split"), "G6": (["G6"], "shrunk"),
                             "N7": (["G7"], "changed"), "N8": ([], "new")})


def test_state_actions_index_current_pairs_and_delete_only_stale_stored_ones():
    current = [pair("a", "b", group_id="g1"), pair("c", "d")]
    stored = [pair("a", "b", group_id="g0"), pair("x", "y")]
    for in_index, expected in ((True, [("index", "a", "b"), ("index", "c", "d"), ("delete", "x", "y")]),
                               (False, [("index", "a", "b"), ("index", "c", "d")])):
        with TestPipeline() as p:
            actions = ({"current": p | "C" >> beam.Create(current), "stored": p | "S" >> beam.Create(stored)}
                       | PairStateActions("idx-pairs", stored_in_index=in_index))
            assert_that(actions | beam.Map(lambda a: (a["_op_type"], a["_id"], a["_index"],
                                                      (a["_source"].get("row") or {}).get("group_id"))),
                        equal_to([(op, pair_id(a, b), "idx-pairs", "g1" if a == "a" else None)
                                  for op, a, b in expected]))
