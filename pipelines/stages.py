"""The job's stages: composites shared by the full and the incremental job (pipelines/dedup.py).

Each stage takes the `Job` (config, Elasticsearch target, derived settings) and returns a dict of
named PCollections. Records are dicts; their fields are listed in ARCHITECTURE.md:

    Document   {"id", "text", "title", "url", "lang", "published_at", "source", "raw_hash", ...}
    Unit       {"unit_id", "doc_id", "unit_type", "unit_index", "start", "end", "doc_chars", "text",
                "content_hash", "template", ...}                     (unit_id: "doc", "doc#p3", "doc#s1")
    Signed     Unit + {"sig", "bands", "ids" (shingle ids)}
    Vector     {"id" (= unit_id), "doc_id", "unit_type", "start", "end", "doc_chars", "vector", ...}
    Pair       {"doc_a", "doc_b" (unit ids until RollUp, then document ids), "method", scores...}
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import apache_beam as beam

from pipelines.config import JobConfig
from transforms.incremental.current import (CatalogueMeta, CurrentPairs, GroupLineage, PairStateActions,
                                            ReadStoredPairs, WithEndMeta, ensure_pairs_index)
from transforms.incremental.state import unit_settings, with_raw_hash
from transforms.io.elasticsearch import BulkWrite
from transforms.io.elasticsearch_store import EsConfig, RefreshIndex, WriteToElasticsearch, pairs_index
from transforms.io.ingest import DropDuplicateIds, ReadCorpus
from transforms.io.sinks import (DUPLICATES_SCHEMA, GROUPS_CURRENT_SCHEMA, GROUPS_SCHEMA, UNIT_MATCHES_SCHEMA,
                                 WriteDeadLetters, WriteTable)
from transforms.io.bq_sink import WriteRunTable
from transforms.io.bundles import ShardedBundles
from transforms.matching.common_source import CommonSourcePairs
from transforms.matching.groups import DuplicateGroups
from transforms.matching.alignment import sequence_to_text
from transforms.matching.knn import KnnDuplicates
from transforms.matching.merge import MergeSignals
from transforms.matching.rollup import RollUpMatches
from transforms.matching.vector_memory import ExactKnnDuplicates
from transforms.reporting.progress import Progress
from transforms.signals.embed import EmbedDistinctTexts, EmbedTexts
from transforms.signals.models import model_info
from transforms.signals.lsh import MinHashDuplicates, SignUnits, shingles_to_text
from transforms.text.language import DetectLanguage
from transforms.text.normalize import CleanDocuments
from transforms.text.templates import DropFramePassages, FindTemplates
from transforms.text.units import SplitUnits, is_matchable, parse_unit_id

# Fields of a Vector that kNN search, scoring and roll-up read (the index gets the whole record).
MATCH_FIELDS = ("id", "doc_id", "unit_type", "start", "end", "doc_chars", "vector")


class EmbedKey(NamedTuple):
    """The key a unit carries through RunInference: its metadata and index state, so the Vector
    record is built from the key and the vector without a join back to the units."""
    unit_id: str
    doc_id: str
    unit_type: str
    unit_index: int
    start: int
    end: int
    doc_chars: int
    content_hash: str
    title: Optional[str]
    url: Optional[str]
    lang: Optional[str]
    raw_hash: Optional[str]
    id: str                      # = unit_id: the Vector's id
    settings: str                # Job.unit_settings of its type
    bands: list                  # MinHash band keys
    shingles: str                # shingle ids, as stored in the index
    model: str
    model_hash: str
    tokens: Optional[str] = None  # a document's word sequence, as stored in the index (alignment.py)

    @classmethod
    def of(cls, unit: dict, settings: str, model: str, model_hash: str) -> "EmbedKey":
        tokens = unit.get("tokens")
        return cls(unit["unit_id"], unit["doc_id"], unit["unit_type"], unit.get("unit_index"), unit["start"],
                   unit["end"], unit["doc_chars"], unit.get("content_hash"), unit.get("title"), unit.get("url"),
                   unit.get("lang"), unit.get("raw_hash"), unit["unit_id"], settings, unit["bands"],
                   shingles_to_text(unit["ids"]), model, model_hash,
                   sequence_to_text(tokens) if tokens is not None else None)


@dataclasses.dataclass(frozen=True)
class Job:
    """What every stage may read: the config, the Elasticsearch target, settings derived once."""
    cfg: JobConfig
    es: EsConfig
    model: dict                  # model_info(): name, fingerprint, dims
    unit_settings: dict          # {unit_type: the state string an indexed unit must carry to be reused}
    workers: int = 1             # processes sharing a stage, for progress lines (0: unknown)
    local: bool = True           # progress lines go to this terminal

    @classmethod
    def create(cls, cfg: JobConfig, es: Optional[EsConfig] = None, *, workers: int = 1, local: bool = True) -> "Job":
        info = model_info(cfg.model)
        embedding = f"{cfg.embed_backend}|{cfg.embed_precision}|{cfg.long_texts}"
        split = f"{cfg.min_chars}|{list(cfg.units)}|{cfg.min_unit_chars}|{list(cfg.match_units)}"
        key = cfg.minhash_params().key
        settings = {kind: unit_settings(info["fingerprint"] or cfg.model, embedding, key, *bands, split)
                    for kind, bands in cfg.banding().items()}
        return cls(cfg, es or cfg.es_config(), info, settings, workers, local)

    @property
    def uses_index(self) -> bool:
        return self.cfg.vector_store == "elasticsearch"

    @property
    def min_cosine(self) -> dict:
        """{unit_type: the cosine floor kNN candidates of that type are kept above}, matched types only."""
        cos_t, _ = self.cfg.search_floors()
        return {t: cos_t[t] for t in self.cfg.match_units}

    def progress(self, name: str, noun: str, total=None) -> Progress:
        return Progress(name, noun, total=total, workers=self.workers, interval_s=self.cfg.progress_interval,
                        local=self.local)

    def table(self, table: str, schema) -> WriteTable:
        return WriteTable(self.cfg.output, table, schema, formats=list(self.cfg.output_formats),
                          rows_per_file=self.cfg.rows_per_file)


def table_label(table: str) -> str:
    return "Write" + "".join(w.title() for w in table.split("_"))


class ReadDocuments(beam.PTransform):
    """PBegin -> {"read": every Document read, "documents": Documents with unique ids and `raw_hash`,
    "dead_letter_read", "dead_letter_duplicate_id": DeadLetters}."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, pbegin):
        read = pbegin | "ReadCorpus" >> ReadCorpus(self.job.cfg.source_config())
        unique = (read.documents | "ReadProgress" >> self.job.progress("read", "documents")
                  | "DropDuplicateIds" >> DropDuplicateIds())
        # The hash of the raw record tells an incremental run which documents are unchanged.
        return {"read": read.documents, "dead_letter_read": read.dead_letter,
                "documents": unique.documents | "RawHash" >> beam.Map(with_raw_hash),
                "dead_letter_duplicate_id": unique.dead_letter}


class CleanAndDetect(beam.PTransform):
    """Document (raw text) -> {"documents": Documents with clean text and `lang`, "dead_letter"}."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, docs):
        cleaned = docs | "CleanText" >> CleanDocuments(min_chars=self.job.cfg.min_chars)
        return {"documents": cleaned.documents | "DetectLanguage" >> DetectLanguage(),
                "dead_letter": cleaned.dead_letter}


class PrepareUnits(beam.PTransform):
    """Documents -> {"templates": template paragraphs, "units": every Unit, "to_match": the Units matched}.

    `corpus`: the Documents whose paragraphs count towards template detection (default: the input;
    an incremental run adds its unchanged documents: template text is a property of the whole corpus).
    """

    def __init__(self, job: Job, corpus=None):
        super().__init__()
        self.job, self.corpus = job, corpus

    def expand(self, docs):
        cfg = self.job.cfg
        corpus = docs if self.corpus is None else self.corpus
        templates = corpus | "FindTemplates" >> FindTemplates(cfg.template_min_docs, cfg.template_min_share)
        template_keys = beam.pvalue.AsDict(templates | "TemplateKeys" >> beam.Map(lambda t: (t["key"], t["documents"])))
        # Splitting reads the template side input, which needs every document first: a stage boundary. In
        # shards of ~20 pages per 20,000: this stage's output is ~58 KB a page, and Flink's batch runner
        # holds a bundle's output in the TaskManager's heap (transforms/io/bundles.py).
        units = docs | "SplitUnits" >> SplitUnits(list(cfg.units), min_chars=cfg.min_unit_chars,
                                                  templates=template_keys, sharded=True)
        # Documents, and (by default) paragraphs long enough to be a passage; template paragraphs never.
        to_match = units | "UnitsToMatch" >> beam.Filter(is_matchable, list(cfg.match_units), cfg.min_passage_chars)
        return {"templates": templates, "units": units, "to_match": to_match}


class SignAndEmbed(beam.PTransform):
    """Unit -> {"signed": Signed units, "vectors": Vector records with the unit's whole index state,
    "matchable": Vectors cut to MATCH_FIELDS, "signatures": {"id", "sig", "ids"} of units with shingles,
    "tokens": (document unit id, word sequence), "texts_embedded": one Embedding per distinct text encoded}."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, units):
        cfg, settings = self.job.cfg, self.job.unit_settings
        model, model_hash = cfg.model, self.job.model["fingerprint"] or ""
        # Shingles, MinHash signature and band keys once per unit; they go to the index with the vector.
        signed = units | "MinHashSign" >> SignUnits(cfg.minhash_params(), cfg.banding())

        def embedding_key(u):
            return EmbedKey.of(u, settings[u["unit_type"]], model, model_hash), u["text"]

        # Embed deals the units into fixed groups (one encode call each, the same on every runner): that
        # shuffle also spreads them over the workers, unfused from the read. Progress counts the groups
        # as they are encoded.
        embedder = EmbedTexts(cfg.model, batch_size=cfg.embed_batch_size, min_batch_size=cfg.embed_min_batch,
                              max_batch_size=cfg.embed_max_batch, device=cfg.device or None,
                              precision=cfg.embed_precision, backend=cfg.embed_backend,
                              torch_threads=cfg.torch_threads or None, long_texts=cfg.long_texts,
                              progress=self.job.progress("embed", "groups"))
        keyed = signed | "KeyForEmbedding" >> beam.Map(embedding_key)
        if cfg.embed_distinct_texts:  # each distinct text is encoded once: copies share its vector
            embedded = keyed | "Embed" >> EmbedDistinctTexts(embedder)
        else:
            each = keyed | "Embed" >> embedder
            embedded = {"vectors": each, "embedded": each}
        vectors = embedded["vectors"] | "WithMetadata" >> beam.Map(lambda r: {**r, **r["id"]._asdict()})
        # The shingles, bands and settings a Vector also carries would otherwise wait in memory until
        # the searches.
        matchable = vectors | "ForMatching" >> beam.Map(lambda r: {k: r[k] for k in MATCH_FIELDS})
        signatures = (signed | "SignedWithShingles" >> beam.Filter(lambda u: u["ids"].size > 0)
                      | "AsSignatures" >> beam.Map(lambda u: {"id": u["unit_id"], "sig": u["sig"], "ids": u["ids"]}))
        tokens = signed | "DocumentTokens" >> beam.FlatMap(
            lambda u: [(u["unit_id"], u["tokens"])] if u.get("tokens") is not None else [])
        return {"signed": signed, "vectors": vectors, "matchable": matchable, "signatures": signatures,
                "tokens": tokens, "texts_embedded": embedded["embedded"]}


class IndexVectors(beam.PTransform):
    """Vector -> {"indexed": ids written, "dead_letter", "ready": a singleton once the index is
    refreshed (and, in a full run, force-merged)}. `also`: PCollections of other index changes the
    refresh waits for (an incremental run's deletions)."""

    def __init__(self, job: Job, also=(), merge_segments: int = 0):
        super().__init__()
        self.job, self.also, self.merge_segments = job, tuple(also), merge_segments

    def expand(self, vectors):
        written = vectors | "WriteVectors" >> WriteToElasticsearch(self.job.es, batch_size=self.job.cfg.es_batch_size)
        changed = ((written.indexed, *self.also) | "AllIndexChanges" >> beam.Flatten()) if self.also else written.indexed
        # A freshly loaded index, merged: every later kNN query searches fewer HNSW graphs.
        ready = changed | "Refresh" >> RefreshIndex(self.job.es, point=False, merge_segments=self.merge_segments,
                                                    merge_timeout_s=self.job.cfg.es_merge_timeout_s)
        return {"indexed": written.indexed, "dead_letter": written.dead_letter, "ready": ready}


class SemanticMatch(beam.PTransform):
    """Vector queries -> {"pairs": unit Pairs by cosine, "neighbourhood": (id, mean top-k cosine)} and,
    searched in Elasticsearch, "neighbours": (id, [(neighbour id, cosine)]) (stored for the draft check).

    `ready`: the index's refresh singleton (Elasticsearch kNN); None: exact search in memory over
    the queries themselves (--vector_store memory)."""

    def __init__(self, job: Job, ready=None, with_progress: bool = True):
        super().__init__()
        self.job, self.ready, self.with_progress = job, ready, with_progress

    def expand(self, queries):
        cfg = self.job.cfg
        if not self.job.uses_index:
            return queries | "ExactKnn" >> ExactKnnDuplicates(
                k=cfg.knn_k, min_cosine=self.job.min_cosine, exclude_same_document=cfg.knn_exclude_same_document,
                with_neighbourhood=True)
        # One shard of the queries per bundle: a bundle's neighbours and pairs wait in the runner's heap on
        # Flink until it ends (transforms/io/bundles.py). The shard step waits for the index (`ready`) and
        # counts progress itself: a step that reads a side input would start a stage of its own.
        side = {} if self.ready is None else {"ready": beam.pvalue.AsSingleton(self.ready)}
        progress = None
        if self.with_progress:
            side["total"] = beam.pvalue.AsSingleton(queries | "CountQueries" >> beam.combiners.Count.Globally())
            progress = self.job.progress("knn", "queries").dofn()
        sharded = queries | "QueriesInShards" >> ShardedBundles(key=lambda r: r["id"], dofn=progress, gates=("ready",),
                                                                **side)
        return sharded | "KnnSearch" >> KnnDuplicates(
            self.job.es, ready=None, k=cfg.knn_k, num_candidates=cfg.knn_num_candidates,
            min_cosine=self.job.min_cosine, exclude_same_document=cfg.knn_exclude_same_document,
            with_neighbourhood=True, exact_documents=cfg.exact_documents)


def lsh_runs(job: Job) -> dict:
    """{unit_type: MinHashDuplicates} as configured (also what the summary describes)."""
    cfg, (_, jac_t) = job.cfg, job.cfg.search_floors()
    return {kind: MinHashDuplicates(cfg.minhash_params(), jac_t[kind], target_recall=cfg.lsh_target_recall,
                                    max_bucket=cfg.lsh_max_bucket, oversize_window=cfg.lsh_window,
                                    prefilter_margin=cfg.lsh_prefilter_margin, signed=True, banding=bands)
            for kind, bands in cfg.banding().items()}


class LexicalMatch(beam.PTransform):
    """Signatures -> {"pairs": unit Pairs by verified Jaccard, "oversized": oversized LSH buckets}.

    LSH per unit type: a paragraph is never banded with a whole document."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job

    def expand(self, signatures):
        pairs, oversized = [], []
        for kind, run in lsh_runs(self.job).items():
            typed = signatures | f"Only{kind.title()}" >> beam.Filter(lambda s, k: parse_unit_id(s["id"])[1] == k, kind)
            result = typed | f"MinHashLSH{kind.title()}" >> run
            pairs.append(result["pairs"])
            oversized.append(result["oversized"])
        return {"pairs": tuple(pairs) | "AllPairs" >> beam.Flatten(),
                "oversized": tuple(oversized) | "AllOversized" >> beam.Flatten()}


class ScoreAndRollUp(beam.PTransform):
    """(Pair PCollections of the searches) -> {"scored": (unit_type, cosine, jaccard, kept) of every
    candidate, "documents": document Pairs with evidence and relation, "units": unit matches,
    "frames": unit ids of template frame passages (their matches dropped)}.

    `vectors`, `signatures`: of every unit a pair may name; `neighbourhood`: for the margins (or None);
    `tokens`: (document unit id, word sequence) of every document a pair may name, for the alignment."""

    def __init__(self, job: Job, *, vectors, signatures, neighbourhood=None, tokens=None):
        super().__init__()
        self.job, self.vectors, self.signatures, self.neighbourhood = job, vectors, signatures, neighbourhood
        self.tokens = tokens

    def expand(self, found):
        cfg = self.job.cfg
        cos_t, jac_t = cfg.thresholds()
        merged = found | "MergeSignals" >> MergeSignals(
            vectors=self.vectors, signatures=self.signatures, cosine_threshold=cos_t, jaccard_threshold=jac_t,
            rules=cfg.rules(), neighbourhood=self.neighbourhood,
            margin_threshold=cfg.margins(), combined=cfg.combined(),
            tokens=self.tokens if cfg.uses_alignment else None, aligned=cfg.aligned(), contained=cfg.contained())
        # A passage matching units of as many documents as a template paragraph is a template frame.
        framed = merged["pairs"] | "DropFramePassages" >> DropFramePassages(cfg.frame_min_docs, with_frames=True)
        unit_pairs = framed["rows"]
        with_docs = "document" in cfg.match_units
        doc_vectors = self.vectors | "DocumentVectors" >> beam.Filter(lambda r: r["unit_type"] == "document")
        doc_signatures = self.signatures | "DocumentSignatures" >> beam.Filter(
            lambda s: parse_unit_id(s["id"])[1] == "document")
        rolled = unit_pairs | "RollUp" >> RollUpMatches(
            units=self.vectors, doc_vectors=doc_vectors if with_docs else None,
            doc_signatures=doc_signatures if with_docs else None, duplicate_coverage=cfg.duplicate_coverage)
        documents = rolled["documents"]
        # Full runs only: an incremental run sees only its own documents' pairs, and a pair of two
        # untouched documents through a new one would outlive that document in the catalogue.
        if with_docs and cfg.common_source_cosine > 0 and cfg.mode != "incremental":
            documents = documents | "CommonSource" >> CommonSourcePairs(
                doc_vectors, doc_signatures, min_cosine=cfg.common_source_cosine)
        return {"scored": merged["scored"], "documents": documents, "units": rolled["units"],
                "frames": framed["frames"]}


class GroupDuplicates(beam.PTransform):
    """document Pairs -> {"pairs": Pairs with group/canonical and run id, "groups": Group rows}.

    `all_docs`: every Document of the input (the canonical choice reads their metadata)."""

    def __init__(self, job: Job, all_docs):
        super().__init__()
        self.job, self.all_docs = job, all_docs

    def expand(self, pairs):
        cfg = self.job.cfg
        run_id, model = cfg.effective_run_id, cfg.model
        grouped = pairs | "DuplicateGroups" >> DuplicateGroups(
            self.all_docs, policy=list(cfg.canonical_policy), preferred_url=cfg.preferred_url, rounds=cfg.group_rounds)
        return {"pairs": grouped["pairs"] | "Annotate" >> beam.Map(lambda r: {**r, "model": model, "run_id": run_id}),
                "groups": grouped["groups"] | "AnnotateGroups" >> beam.Map(lambda g: {**g, "run_id": run_id})}


class CurrentState(beam.PTransform):
    """The catalogue's current pairs and groups (transforms/incremental/current.py), kept with
    Elasticsearch in `<physical index>-pairs`; without it they are this run's.

    full: {"pairs": grouped Pairs, "groups", "docs": Documents} -> {"pairs", "groups" (with
    `previous_ids`/`change`), "written", "dead_letter"}.
    incremental: {"found": scored document Pairs, "docs", "affected": ids of the documents whose stored
    pairs this run replaces} -> the same, and "run_pairs"/"run_groups": the current rows of the pairs
    this run found and of the groups they are in."""

    def __init__(self, job: Job, mode: str):
        super().__init__()
        self.job, self.mode = job, mode

    def expand(self, sources):
        job, cfg = self.job, self.job.cfg
        p = sources["docs"].pipeline
        stored = (p | "ReadStoredPairs" >> ReadStoredPairs(job.es.connection, job.es.index) if job.uses_index
                  else p | "NoStoredPairs" >> beam.Create([]))
        meta = {"docs": sources["docs"], "stored": stored} | "CatalogueMeta" >> CatalogueMeta()
        run_id, model = cfg.effective_run_id, cfg.model
        out = {}
        if self.mode == "incremental":
            found = sources["found"] | "Annotate" >> beam.Map(lambda r: {**r, "model": model, "run_id": run_id})
            rows = ({"found": found, "stored": stored, "affected": sources["affected"]}
                    | "CurrentPairs" >> CurrentPairs() | "WithEndMeta" >> WithEndMeta(meta))
            grouped = rows | "CurrentGroups" >> DuplicateGroups(
                meta, policy=list(cfg.canonical_policy), preferred_url=cfg.preferred_url, rounds=cfg.group_rounds)
            pairs, groups = grouped["pairs"], grouped["groups"] | "GroupsRunId" >> beam.Map(lambda g: {**g, "run_id": run_id})
            out.update(self._this_run(found, pairs, groups))
        else:
            pairs, groups = sources["pairs"] | "WithEndMeta" >> WithEndMeta(meta), sources["groups"]
        out.update(pairs=pairs, groups={"groups": groups, "stored": stored} | "GroupLineage" >> GroupLineage())
        if job.uses_index:
            index = pairs_index(job.es.physical_index)
            actions = ({"current": pairs, "stored": stored}
                       | "PairStateActions" >> PairStateActions(index, stored_in_index=self.mode == "incremental"))
            written = actions | "WritePairState" >> BulkWrite(
                job.es.connection, lambda a: {k: a[k] for k in ("_op_type", "_index", "_id", "_source")},
                before_first=lambda client, _: ensure_pairs_index(client, index), namespace="pair_state")
            out.update(written=written.written, dead_letter=written.dead_letter)
        else:
            out.update(written=p | "NoState" >> beam.Create([]), dead_letter=p | "NoStateDeadLetters" >> beam.Create([]))
        return out

    @staticmethod
    def _this_run(found, pairs, groups) -> dict:
        """The current rows of the pairs this run found, and the current groups they are in."""
        keys = found | "FoundKeys" >> beam.Map(lambda r: ((r["doc_a"], r["doc_b"]), True))
        run_pairs = ({"row": pairs | "KeyCurrent" >> beam.Map(lambda r: ((r["doc_a"], r["doc_b"]), r)), "found": keys}
                     | "JoinFound" >> beam.CoGroupByKey()
                     | "RunPairs" >> beam.FlatMap(lambda kv: kv[1]["row"] if kv[1]["found"] else []))
        run_groups = (run_pairs | "RunGroupIds" >> beam.FlatMap(lambda r: [r["group_id"]] if r.get("group_id") else [])
                      | "KeyRunGroups" >> beam.Map(lambda g: (g, True)))
        run_groups = ({"group": groups | "KeyGroups" >> beam.Map(lambda g: (g["group_id"], g)), "run": run_groups}
                      | "JoinRunGroups" >> beam.CoGroupByKey()
                      | "RunGroups" >> beam.FlatMap(lambda kv: kv[1]["group"] if kv[1]["run"] else []))
        return {"run_pairs": run_pairs, "run_groups": run_groups}


def annotate_units(job: Job, unit_matches):
    run_id, model = job.cfg.effective_run_id, job.cfg.model
    return unit_matches | "AnnotateUnits" >> beam.Map(lambda r: {**r, "model": model, "run_id": run_id})


class WritePairTables(beam.PTransform):
    """{"pairs", "groups", "unit_matches", "dead_letter"} -> written file paths (one PCollection):
    duplicates/, groups/, unit_matches/, dead_letter/ under --output, and BigQuery with --bq_output_dataset."""

    def __init__(self, job: Job, run_date: str = ""):
        super().__init__()
        self.job, self.run_date = job, run_date

    def expand(self, tables):
        job, cfg = self.job, self.job.cfg
        written = [tables["pairs"] | table_label("duplicates") >> job.table("duplicates", DUPLICATES_SCHEMA),
                   tables["groups"] | table_label("groups") >> job.table("groups", GROUPS_SCHEMA)]
        if cfg.bq_output_dataset:
            for table, schema, rows in (("duplicates", DUPLICATES_SCHEMA, tables["pairs"]),
                                        ("groups", GROUPS_SCHEMA, tables["groups"]),
                                        ("unit_matches", UNIT_MATCHES_SCHEMA, tables["unit_matches"])):
                rows | f"BigQuery{table.title()}" >> WriteRunTable(cfg.bq_output_dataset, table, schema, self.run_date)
        if "current_pairs" in tables:
            written += [tables["current_pairs"] | table_label("duplicates_current") >> job.table("duplicates_current", DUPLICATES_SCHEMA),
                        tables["current_groups"] | table_label("groups_current") >> job.table("groups_current", GROUPS_CURRENT_SCHEMA)]
            if cfg.bq_output_dataset:
                for table, schema, rows in (("duplicates_current", DUPLICATES_SCHEMA, tables["current_pairs"]),
                                            ("groups_current", GROUPS_CURRENT_SCHEMA, tables["current_groups"])):
                    rows | f"BigQuery{table.title().replace('_', '')}" >> WriteRunTable(cfg.bq_output_dataset, table, schema,
                                                                                               self.run_date, replace=True)
        written.append(tables["unit_matches"] | table_label("unit_matches") >> job.table("unit_matches", UNIT_MATCHES_SCHEMA))
        written.append(tables["dead_letter"] | "WriteDeadLetters" >> WriteDeadLetters(cfg.output))
        return tuple(written) | "AllWritten" >> beam.Flatten()
