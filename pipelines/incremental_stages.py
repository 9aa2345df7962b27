"""Stages only the incremental job has: what is already indexed is looked up, not recomputed.

An incremental run processes only new and changed units; the pairs it finds must equal those of a
full run over the catalogue as it stands, so it also re-searches the unchanged units of every
touched document and fetches, from the index, the old units that its pairs name.
"""
from __future__ import annotations

import apache_beam as beam

from pipelines.stages import MATCH_FIELDS, Job, SemanticMatch
from transforms.incremental.state import (CHANGED_DOCS_TAG, FRESH_TAG, MOVED_TAG, SAME_DOCS_TAG, SAME_RAW_TAG,
                                          UNCHANGED_TAG, BandLookup, DeleteAbsentDocuments, FetchStoredUnits, PruneStaleUnits,
                                          SplitByState, SplitDocsByState)
from transforms.text.units import parse_unit_id


class SplitDocuments(beam.PTransform):
    """Document (with raw_hash) -> {"changed": Documents to process, "same": Documents whose raw record
    and settings are indexed unchanged (not split, embedded or matched again), "same_raw": their raw
    records (cleaned only to count template paragraphs over the whole corpus)}."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, docs):
        if "document" not in self.job.cfg.match_units:
            return {"changed": docs, "same": None, "same_raw": None}
        state = docs | "ByState" >> SplitDocsByState(self.job.es, self.job.unit_settings["document"])
        return {"changed": state[CHANGED_DOCS_TAG], "same": state[SAME_DOCS_TAG], "same_raw": state[SAME_RAW_TAG]}


class SplitUnits(beam.PTransform):
    """Unit -> {"fresh": Units to sign and embed, "unchanged": Units indexed with this text and these
    settings, "touched": (doc_id, None) of every document with a fresh or moved unit}."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, units):
        state = units | "ByState" >> SplitByState(self.job.es, self.job.unit_settings)
        touched = ((state[FRESH_TAG] | "FreshDocs" >> beam.Map(lambda u: u["doc_id"]), state[MOVED_TAG])
                   | "TouchedDocs" >> beam.Flatten() | "DistinctTouched" >> beam.Distinct()
                   | "KeyTouched" >> beam.Map(lambda d: (d, None)))
        return {"fresh": state[FRESH_TAG], "unchanged": state[UNCHANGED_TAG], "touched": touched}


def _units_of_touched(label: str, touched, units_by_doc):
    """(doc_id, None) touched, (doc_id, x) -> [(doc_id, [x...])] of the touched documents."""
    return ({"touched": touched, "units": units_by_doc} | f"Join{label}" >> beam.CoGroupByKey()
            | f"{label}OfTouched" >> beam.FlatMap(lambda kv: [(kv[0], kv[1]["units"])] if kv[1]["touched"] else []))


class Requery(beam.PTransform):
    """Unchanged Units -> their stored records (Vector + shingles + bands) where their document is
    touched: they are searched again, so every match of a changed document is found, as in a full run."""

    def __init__(self, job: Job, touched):
        super().__init__()
        self.job, self.touched = job, touched

    def expand(self, unchanged):
        by_doc = unchanged | "ByDoc" >> beam.Map(lambda u: (u["doc_id"], u["unit_id"]))
        return (_units_of_touched("Unchanged", self.touched, by_doc)
                | "UnitIds" >> beam.FlatMap(lambda kv: kv[1])
                | "Fetch" >> FetchStoredUnits(self.job.es))


class CleanIndex(beam.PTransform):
    """Units to match (of this input) -> ids of index entries deleted: units a touched document no
    longer has, and with --on_deleted delete, documents absent from `input_ids`."""

    def __init__(self, job: Job, touched, input_ids):
        super().__init__()
        self.job, self.touched, self.input_ids = job, touched, input_ids

    def expand(self, to_match):
        by_doc = to_match | "UnitIdsByDoc" >> beam.Map(lambda u: (u["doc_id"], u["unit_id"]))
        pruned = _units_of_touched("Current", self.touched, by_doc) | "PruneStaleUnits" >> PruneStaleUnits(self.job.es)
        out = {"stale_units_deleted": pruned}
        changes = [pruned | "PrunedAsStr" >> beam.Map(str)]
        if self.job.cfg.on_deleted == "delete":
            out["absent_documents_deleted"] = gone = (
                self.input_ids | "DistinctInputIds" >> beam.Distinct()
                | "DeleteAbsentDocuments" >> DeleteAbsentDocuments(self.job.es))
            changes.append(gone)
        out["changes"] = tuple(changes) | "AllDeletions" >> beam.Flatten()
        return out


class LookupBands(beam.PTransform):
    """(Signed fresh units, stored requeried units) -> unit Pairs whose band keys meet in the index,
    with verified Jaccard."""

    def __init__(self, job: Job, ready):
        super().__init__()
        self.job, self.ready = job, ready

    def expand(self, sources):
        signed, requery = sources
        _, jac_t = self.job.cfg.search_floors()
        queries = (signed, requery | "RequeryAsSigned" >> beam.Map(
            lambda r: {"unit_id": r["id"], "doc_id": r["doc_id"], "unit_type": r["unit_type"], "bands": r["bands"],
                       "ids": r["ids"]})) | "BandQueries" >> beam.Flatten()
        return queries | "BandLookup" >> BandLookup(self.job.es, jac_t, ready=self.ready,
                                                    max_hits=self.job.cfg.lsh_max_bucket)


class StoredEnds(beam.PTransform):
    """(found Pair PCollections) -> {"stored": stored records of the old units (and their documents)
    the pairs name, "neighbourhood": their kNN neighbourhood in the current index, or None;
    "neighbours": (id, [(neighbour, cosine)]) of the same searches (Elasticsearch only), or None}."""

    def __init__(self, job: Job, *, queries, ready, with_neighbourhood: bool):
        super().__init__()
        self.job, self.queries, self.ready, self.with_neighbourhood = job, queries, ready, with_neighbourhood

    def expand(self, found):
        ends = (found | "AllFound" >> beam.Flatten()
                | "PairEnds" >> beam.FlatMap(lambda r: {u for x in (r["doc_a"], r["doc_b"]) for u in (x, parse_unit_id(x)[0])})
                | "KeyEnds" >> beam.Map(lambda u: (u, None)))
        fresh_ids = self.queries | "QueryIds" >> beam.Map(lambda r: (r["id"], None))
        old_ids = ({"need": ends, "fresh": fresh_ids} | "JoinEnds" >> beam.CoGroupByKey()
                   | "OnlyOld" >> beam.FlatMap(lambda kv: [kv[0]] if kv[1]["need"] and not kv[1]["fresh"] else []))
        stored = old_ids | "FetchStoredUnits" >> FetchStoredUnits(self.job.es)
        neighbourhood = neighbours = None
        if self.with_neighbourhood:
            # The margins of pairs with an indexed unit need its neighbourhood too, searched in the
            # current index as a full run over the whole catalogue would.
            searched = (stored | "StoredForMatching" >> beam.Map(lambda r: {k: r[k] for k in MATCH_FIELDS})
                        | "StoredNeighbourhood" >> SemanticMatch(self.job, ready=self.ready, with_progress=False))
            neighbourhood, neighbours = searched["neighbourhood"], searched.get("neighbours")
        return {"stored": stored, "neighbourhood": neighbourhood, "neighbours": neighbours}
