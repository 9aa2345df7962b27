"""Duplicate groups: connected components of the duplicate-pair graph, computed in Beam, and a
canonical document per group.

    labels = edges | ConnectedComponents(rounds=24)        # (node, smallest node of its component)
    out = pairs | DuplicateGroups(docs, policy=("earliest", "longest", "smallest_id"))

Connected components use the alternating large-star / small-star rounds of Kiveris et al. (2014):
every round is two GroupByKeys over the edge list, no worker ever holds more than one node's
neighbourhood, and the number of rounds grows with log(n) (a 10,000-node chain settles in 15).
Beam graphs cannot loop, so `rounds` are unrolled; a final check counts edges whose two ends got
different labels and fails the job, naming the option to raise, rather than write wrong groups.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

CANONICAL_POLICIES = ("earliest", "longest", "shortest", "smallest_id")


def _large_star(element):
    node, neighbours = element
    neighbours = set(neighbours)
    smallest = min(neighbours | {node})
    for v in neighbours:
        if v > node and v != smallest:
            yield (smallest, v)


def _small_star(element):
    node, lower = element
    lower = set(lower)
    smallest = min(lower | {node})
    for v in lower | {node}:
        if v != smallest:
            yield (smallest, v)


class ConnectedComponents(beam.PTransform):
    """Undirected edges (a, b) -> (node, label) for every node on an edge; label = smallest node id
    of its component."""

    def __init__(self, rounds: int = 24):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        current = edges | "Canonical" >> beam.Map(lambda e: (min(e), max(e))) | "Distinct0" >> beam.Distinct()
        for r in range(1, self.rounds + 1):
            current = (current
                       | f"LargeStarBoth{r}" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
                       | f"LargeStarGroup{r}" >> beam.GroupByKey()
                       | f"LargeStar{r}" >> beam.FlatMap(_large_star)
                       | f"SmallStarKey{r}" >> beam.Map(lambda e: (max(e), min(e)))
                       | f"SmallStarGroup{r}" >> beam.GroupByKey()
                       | f"SmallStar{r}" >> beam.FlatMap(_small_star)
                       | f"Distinct{r}" >> beam.Distinct())
        labels = (current
                  | "BothEnds" >> beam.FlatMap(lambda e: [(e[0], e[0]), (e[1], e[0])])
                  | "SmallestLabel" >> beam.CombinePerKey(min))
        return labels | "CheckConverged" >> _CheckConverged(edges, self.rounds)


class _CheckConverged(beam.PTransform):
    """Passes labels through once every original edge joins two nodes of the same label."""

    def __init__(self, edges, rounds):
        super().__init__()
        self.edges = edges
        self.rounds = rounds

    def expand(self, labels):
        rounds = self.rounds
        unconverged = Metrics.counter("groups", "unconverged_edges")

        def left(element):
            _, g = element
            for b in g["edges"]:
                for label in g["label"]:
                    yield b, label

        def check(element):
            _, g = element
            for label_a in g["left"]:
                for label_b in g["label"]:
                    if label_a != label_b:
                        unconverged.inc()
                        yield 1

        by_a = self.edges | "EdgeByA" >> beam.Map(lambda e: (e[0], e[1]))
        with_left = {"edges": by_a, "label": labels} | "JoinA" >> beam.CoGroupByKey() | "Left" >> beam.FlatMap(left)
        bad = ({"left": with_left, "label": labels} | "JoinB" >> beam.CoGroupByKey() | "Compare" >> beam.FlatMap(check)
               | "CountBad" >> beam.combiners.Count.Globally())

        def fail_if_bad(label, bad_count):
            if bad_count:
                raise RuntimeError(f"connected components did not converge in {rounds} rounds ({bad_count} edges "
                                   f"still join two labels): raise --group_rounds")
            return label

        return labels | "FailIfUnconverged" >> beam.Map(fail_if_bad, beam.pvalue.AsSingleton(bad))


def canonical_key(member: dict, policy: Iterable[str], preferred_url: str = ""):
    """Sort key: the first member under `policy` is the group's canonical document."""
    key = []
    for rule in policy:
        if rule == "earliest":
            key.append((member.get("published_at") is None, member.get("published_at") or ""))
        elif rule == "longest":
            key.append(-(member.get("chars") or 0))
        elif rule == "shortest":
            key.append(member.get("chars") or 0)
        elif rule == "preferred_url":
            key.append(0 if preferred_url and re.search(preferred_url, member.get("url") or "") else 1)
        elif rule != "smallest_id":
            raise ValueError(f"unknown canonical policy {rule!r}")
    key.append(member["id"])  # the deterministic fallback
    return tuple(key)


def group_id(label: str) -> str:
    return "g-" + hashlib.sha1(label.encode("utf-8")).hexdigest()[:12]


class DuplicateGroups(beam.PTransform):
    """Document-pair rows + Document dicts -> {"groups": group rows, "pairs": rows with group_id and
    canonical_id}. Group row: {"group_id", "canonical_id", "size", "members": [ids sorted]}.
    Groups are built from rows whose `relation` is "duplicate" (rows without one count as such);
    "passage" rows are passed through with no group."""

    def __init__(self, docs, *, policy=("earliest", "longest", "smallest_id"), preferred_url: str = "",
                 rounds: int = 24):
        super().__init__()
        self.docs = docs
        self.policy = tuple(policy)
        self.preferred_url = preferred_url
        self.rounds = rounds
        for rule in self.policy:
            if rule not in CANONICAL_POLICIES + ("preferred_url",):
                raise ValueError(f"canonical policy takes {CANONICAL_POLICIES + ('preferred_url',)}, got {rule!r}")

    def expand(self, pairs):
        policy, preferred = self.policy, self.preferred_url
        # Only whole-document duplicates join groups: a reused passage is evidence, not identity, and
        # would chain unrelated pages (one shared paragraph each) into one group.
        labels = (pairs | "DuplicateEdges" >> beam.Filter(lambda r: r.get("relation", "duplicate") == "duplicate")
                  | "Edges" >> beam.Map(lambda r: (r["doc_a"], r["doc_b"]))
                  | "Components" >> ConnectedComponents(self.rounds))
        meta = self.docs | "DocMeta" >> beam.Map(lambda d: (d["id"], {
            "id": d["id"], "published_at": d.get("published_at"), "url": d.get("url"), "chars": d["chars"] if "chars" in d else len(d["text"])}))

        def members_by_label(element):
            member, g = element
            # A member whose metadata is not at hand (an old document outside an incremental run's
            # input) still belongs to its group; the canonical choice sees only its id.
            metas = g["meta"] or [{"id": member, "published_at": None, "url": None, "chars": 0}]
            for label in g["label"]:
                for m in metas:
                    yield label, m

        def to_group(element):
            label, members = element
            members = sorted(members, key=lambda m: canonical_key(m, policy, preferred))
            return {"group_id": group_id(label), "canonical_id": members[0]["id"], "size": len(members),
                    "members": sorted(m["id"] for m in members)}

        groups = ({"label": labels, "meta": meta} | "JoinMeta" >> beam.CoGroupByKey()
                  | "ByLabel" >> beam.FlatMap(members_by_label) | "GroupMembers" >> beam.GroupByKey()
                  | "ToGroup" >> beam.Map(to_group))
        assignment = groups | "Assign" >> beam.FlatMap(
            lambda g: [(m, (g["group_id"], g["canonical_id"])) for m in g["members"]])

        def annotate(element):
            _, g = element
            for row in g["rows"]:
                group, canonical = g["group"][0] if g["group"] else (None, None)
                if row.get("relation", "duplicate") != "duplicate":
                    group, canonical = None, None
                yield {**row, "group_id": group, "canonical_id": canonical}

        rows = pairs | "KeyByDocA" >> beam.Map(lambda r: (r["doc_a"], r))
        annotated = ({"rows": rows, "group": assignment} | "JoinGroup" >> beam.CoGroupByKey()
                     | "Annotate" >> beam.FlatMap(annotate))
        return {"groups": groups, "pairs": annotated}
