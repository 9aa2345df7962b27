"""The catalogue's current state: every duplicate pair and group as they stand after this run.

A run's own `duplicates/` table holds the pairs it found (in an incremental run, only those of the
documents it touched). The current state covers the whole catalogue; it is kept in a small index
beside the vector index (`<physical index>-pairs`, one document per pair, deterministic ids), so it
follows the alias through blue/green switches and needs no other store:

    stored = p | ReadStoredPairs(es)                       # pair rows of the live index, with group ids
    current = {"found": found, "stored": stored, "affected": doc_ids} | CurrentPairs()
    lineage = {"groups": groups, "stored": stored} | GroupLineage()
    actions = {"current": rows, "stored": stored} | PairStateActions(index, stored_in_index=True)

- `CurrentPairs` (incremental runs): stored pairs that name no *affected* document (searched again
  by this run because a unit is new or changed, or deleted) are kept; this run's pairs are added. A
  full run's current pairs are its own.
- `GroupLineage`: each current group gets `previous_ids` (the stored groups its members were in) and
  `change`: new, unchanged, grown, shrunk, changed (members came and went), merged (members of several
  stored groups) or split (the members of one stored group are now in several groups).
- `PairStateActions`: the bulk actions that make the stored state equal the current one.

Group ids follow the per-run rule (a hash of the group's smallest member id), so a group whose
membership is unchanged keeps its id, and the current tables equal those of a full run over the
catalogue.
"""
from __future__ import annotations

import hashlib
import json
import logging

import apache_beam as beam

from transforms.io.elasticsearch_store import alias_target, pairs_index
from transforms.matching.pair_join import DropRowsNaming

_LOG = logging.getLogger(__name__)

META_FIELDS = ("id", "published_at", "url", "chars")
GROUP_FIELDS = ("group_id", "canonical_id")
CHANGES = ("new", "unchanged", "grown", "shrunk", "changed", "merged", "split")

PAIRS_MAPPING = {
    "dynamic": False,
    "properties": {"doc_a": {"type": "keyword"}, "doc_b": {"type": "keyword"},
                   "row": {"type": "object", "enabled": False}},
}


def pair_id(doc_a: str, doc_b: str) -> str:
    """Deterministic _id of a document pair in the state index."""
    return hashlib.sha1(json.dumps([doc_a, doc_b], ensure_ascii=False).encode("utf-8")).hexdigest()


def doc_meta(doc: dict) -> dict:
    """Document -> what the canonical choice reads: {"id", "published_at", "url", "chars"}."""
    return {"id": doc["id"], "published_at": doc.get("published_at"), "url": doc.get("url"),
            "chars": doc["chars"] if "chars" in doc else len(doc.get("text") or "")}


def ensure_pairs_index(client, index: str) -> bool:
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index, mappings=PAIRS_MAPPING,
                                  settings={"number_of_shards": 1, "number_of_replicas": 0})
        except Exception as exc:  # another worker created it first
            if "resource_already_exists" not in str(exc):
                raise
    return True


class ReadStoredPairs(beam.PTransform):
    """PBegin -> the stored pair rows of the index behind `alias` (DUPLICATES rows with group ids,
    plus `meta_a`/`meta_b`); nothing when there is no live index or no state beside it.

    It reads the alias's target when the pipeline runs (before this run switches it)."""

    def __init__(self, conn, alias: str, page: int = 2000):
        super().__init__()
        self.conn, self.alias, self.page = conn, alias, page

    def expand(self, pbegin):
        conn, alias, page = self.conn, self.alias, self.page

        def scan(_):
            from elasticsearch import helpers

            client = conn.client()
            try:
                live = alias_target(client, alias)
                if not live or not client.indices.exists(index=pairs_index(live)):
                    return
                client.indices.refresh(index=pairs_index(live))
                for hit in helpers.scan(client, index=pairs_index(live), query={"query": {"match_all": {}}},
                                        size=page, _source=["row"]):
                    yield hit["_source"]["row"]
            finally:
                client.close()

        return pbegin | "Start" >> beam.Create([None]) | "ScanPairs" >> beam.FlatMap(scan) | "Reshuffle" >> beam.Reshuffle()


def _key(row: dict) -> tuple:
    return row["doc_a"], row["doc_b"]


def _strip_groups(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in GROUP_FIELDS}


class CatalogueMeta(beam.PTransform):
    """{"docs": Documents of this run, "stored": stored pair rows} -> one meta dict per document id;
    this run's metadata wins over the stored one."""

    def expand(self, sources):
        fresh = sources["docs"] | "FreshMeta" >> beam.Map(lambda d: (d["id"], doc_meta(d)))
        stored = sources["stored"] | "StoredMeta" >> beam.FlatMap(
            lambda r: [(m["id"], m) for m in (r.get("meta_a"), r.get("meta_b")) if m])

        def pick(element):
            _, g = element
            return (g["fresh"] or g["stored"])[0]

        return ({"fresh": fresh, "stored": stored} | "JoinMeta" >> beam.CoGroupByKey()
                | "Pick" >> beam.Map(pick))


class CurrentPairs(beam.PTransform):
    """{"found": this run's pair rows, "stored": stored pair rows, "affected": ids of the documents
    whose stored pairs are void} -> current pair rows (no group ids, no meta): the stored pairs that
    name no affected document, and the found ones (a pair found again replaces its stored row)."""

    def expand(self, sources):
        found = sources["found"] | "StripFound" >> beam.Map(_strip_groups)
        rows = (sources["stored"]
                | "StripStored" >> beam.Map(lambda r: {k: v for k, v in r.items()
                                                        if k not in GROUP_FIELDS + ("meta_a", "meta_b")})
                | "DropAffected" >> DropRowsNaming(sources["affected"], namespace="current",
                                                   counter="stored_pairs_dropped"))

        def pick(element):
            _, g = element
            return (g["found"] or g["kept"])[0]

        return ({"found": found | "KeyFound" >> beam.Map(lambda r: (_key(r), r)),
                 "kept": rows | "KeyKept" >> beam.Map(lambda r: (_key(r), r))}
                | "ByPair" >> beam.CoGroupByKey() | "Pick" >> beam.Map(pick))


class WithEndMeta(beam.PTransform):
    """pair rows -> the same rows with `meta_a`/`meta_b` from `meta` (CatalogueMeta; {"id"} when
    unknown), so the stored state can choose canonical documents outside a later run's input."""

    def __init__(self, meta):
        super().__init__()
        self.meta = meta

    def expand(self, rows):
        meta = self.meta | "KeyMeta" >> beam.Map(lambda m: (m["id"], m))
        for end in ("a", "b"):
            def attach(element, e=end):
                doc, g = element
                m = g["meta"][0] if g["meta"] else {"id": doc}
                for r in g["rows"]:
                    yield {**r, f"meta_{e}": m}
            rows = ({"rows": rows | f"ByDoc{end}" >> beam.Map(lambda r, e=end: (r[f"doc_{e}"], r)), "meta": meta}
                    | f"Join{end}" >> beam.CoGroupByKey() | f"Attach{end}" >> beam.FlatMap(attach))
        return rows


class GroupLineage(beam.PTransform):
    """{"groups": current group rows, "stored": stored pair rows} -> group rows with `previous_ids`
    (sorted ids of the stored groups their members were in) and `change` (one of CHANGES)."""

    def expand(self, sources):
        groups, stored = sources["groups"], sources["stored"]
        old_member = (stored | "OldDuplicates" >> beam.Filter(lambda r: r.get("group_id"))
                      | "OldMembers" >> beam.FlatMap(lambda r: [(r["doc_a"], r["group_id"]), (r["doc_b"], r["group_id"])])
                      | "DistinctOld" >> beam.Distinct())
        new_member = groups | "NewMembers" >> beam.FlatMap(lambda g: [(m, g["group_id"]) for m in g["members"]])

        def links(element):  # per member: (old group, (new group or None, member))
            member, g = element
            new = g["new"][0] if g["new"] else None
            for old in g["old"]:
                yield old, (new, member)

        per_old = ({"old": old_member, "new": new_member} | "JoinMembers" >> beam.CoGroupByKey()
                   | "Links" >> beam.FlatMap(links) | "ByOld" >> beam.GroupByKey())

        def old_summary(element):  # (new group, (old group, its members, the new groups they are in))
            old, links_ = element
            links_ = list(links_)
            members = frozenset(m for _, m in links_)
            news = frozenset(n for n, _ in links_)
            for new in news:
                if new is not None:
                    yield new, (old, members, news)

        prior = per_old | "OldSummary" >> beam.FlatMap(old_summary)

        def annotate(element):
            _, g = element
            for group in g["group"]:
                olds = sorted(set(g["prior"]), key=lambda t: t[0])
                previous = [o for o, _, _ in olds]
                members = frozenset(group["members"])
                if not olds:
                    change = "new"
                elif len(olds) > 1:
                    change = "merged"
                else:
                    _, old_members, news = olds[0]
                    if len(news - {None}) > 1:
                        change = "split"
                    elif old_members == members:
                        change = "unchanged"
                    elif old_members < members:
                        change = "grown"
                    elif members < old_members:
                        change = "shrunk"
                    else:
                        change = "changed"
                yield {**group, "previous_ids": previous, "change": change}

        return ({"group": groups | "KeyGroup" >> beam.Map(lambda g: (g["group_id"], g)), "prior": prior}
                | "JoinPrior" >> beam.CoGroupByKey() | "Annotate" >> beam.FlatMap(annotate))


class PairStateActions(beam.PTransform):
    """{"current": current pair rows (with group ids and meta), "stored": stored pair rows or None}
    -> bulk actions on `index`: every current pair indexed, every stored pair no longer current
    deleted (only when `stored_in_index`: the stored rows were read from this same index)."""

    def __init__(self, index: str, stored_in_index: bool):
        super().__init__()
        self.index, self.stored_in_index = index, stored_in_index

    def expand(self, sources):
        index = self.index

        def to_actions(element):
            (a, b), g = element
            _id = pair_id(a, b)
            if g["current"]:
                row = g["current"][0]
                yield {"id": _id, "_op_type": "index", "_index": index, "_id": _id,
                       "_source": {"doc_a": a, "doc_b": b, "row": row}}
            elif g["stored"]:
                yield {"id": _id, "_op_type": "delete", "_index": index, "_id": _id, "_source": {}}

        current = sources["current"] | "KeyCurrent" >> beam.Map(lambda r: (_key(r), r))
        stored = (sources["stored"] if self.stored_in_index else sources["current"].pipeline
                  | "NoStored" >> beam.Create([]))
        stored = stored | "KeyStored" >> beam.Map(lambda r: (_key(r), None))
        return {"current": current, "stored": stored} | "JoinState" >> beam.CoGroupByKey() | "Actions" >> beam.FlatMap(to_actions)
