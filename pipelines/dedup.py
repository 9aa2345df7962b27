"""The near-duplicate detection job.

    python -m pipelines.dedup --input demo/corpus.jsonl --output out/demo \\
        --es_url http://127.0.0.1:9200 --es_index dedup-demo

DAG (each name is a step of the Beam graph):

    ReadCorpus -> DropDuplicateIds -> CleanText -> DetectLanguage -> SplitUnits -> WriteUnits
    SplitUnits -> UnitsToMatch -> KeyForEmbedding -> Embed (fixed groups) -> IndexVectors -> RefreshIndex
                                               (force-merge) -> KnnSearch (queries: Embed -> ForMatching) --+
                               \-> MinHashLSH<Type> (Signatures -> Candidates -> VerifyJaccard) ---------+
                                                                                                        v
      MergeSignals (both scores per unit pair, rule) -> RollUp (unit matches -> document pairs, coverage,
      evidence) -> DuplicateGroups (connected components, canonical) -> Annotate
      -> WriteDuplicates, WriteGroups, WriteUnitMatches [, BigQuery<Table> with --bq_output_dataset]
    dead letters of ReadCorpus, DropDuplicateIds, CleanText, IndexVectors -> WriteDeadLetters
    stage counts -> WriteSummary -> RunReport (report.html: counts, score charts, groups, top pairs)
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions

from pipelines.options import DedupOptions, beam_help, check_arguments, count_input_files, job_help
from pipelines.runner import (absolute_paths, choose_runner, close_job_streams, default_process_environment, is_direct, local_torch_threads,
                              progress_workers)
from transforms.elasticsearch_io import PointAlias, RefreshIndex, WriteToElasticsearch, check_cluster, resolve_target
from transforms.embed import EmbedTexts, model_info
from transforms.ingest import DropDuplicateIds, ReadCorpus
from transforms.language import DetectLanguage
from transforms.units import SplitUnits, parse_unit_id
from transforms.knn import KnnDuplicates
from transforms.incremental import (CHANGED_DOCS_TAG, FRESH_TAG, MOVED_TAG, SAME_DOCS_TAG, UNCHANGED_TAG, BandLookup,
                                   DeleteAbsentDocuments, FetchStoredUnits, PruneStaleUnits, SplitByState,
                                   SplitDocsByState, unit_settings, with_raw_hash)
from transforms.lsh import MinHashDuplicates, SignUnits, choose_bands, shingles_to_text
from transforms.merge import MergeSignals
from transforms.normalize import CleanDocuments
from transforms.progress import Progress
from transforms.report import print_run_summary
from transforms.run_report import BuildRunReport
from transforms.records import ConfigError
from transforms.vector_memory import ExactKnnDuplicates
from transforms.groups import DuplicateGroups
from transforms.rollup import RollUpMatches
from transforms.bq_sink import WriteRunTable, delete_run_rows
from transforms.sinks import (DUPLICATES_SCHEMA, GROUPS_SCHEMA, TEMPLATES_SCHEMA, UNIT_MATCHES_SCHEMA, UNITS_SCHEMA, CountBy,
                             ReconcileSources, WriteDeadLetters, WriteSummary, WriteTable, clear_outputs)
from transforms.templates import DropFramePassages, FindTemplates

_LOG = logging.getLogger(__name__)
# Fields of a vector record that kNN search, scoring and roll-up read.
MATCH_FIELDS = ("id", "doc_id", "unit_type", "start", "end", "doc_chars", "vector")
UNIT_FIELDS = ("unit_id", "doc_id", "unit_type", "unit_index", "start", "end", "doc_chars", "content_hash",
               "title", "url", "lang", "raw_hash")


def default_run_id(opts: DedupOptions) -> str:
    """Deterministic run id: the same input and settings give the same id (and identical rows)."""
    key = "|".join(str(x) for x in (opts.input, opts.bq_table, opts.bq_query, opts.model, opts.cosine_threshold, opts.knn_k,
                                     opts.knn_num_candidates, opts.es_index, opts.min_chars, opts.signals,
                                     opts.jaccard_threshold, opts.minhash_params().key, opts.match_units,
                                     opts.unit_cosine_threshold, opts.unit_jaccard_threshold,
                                     opts.canonical_policy, opts.preferred_url, opts.rule, opts.unit_rule,
                                     opts.template_min_docs, opts.template_min_share, opts.duplicate_coverage,
                                     opts.cosine_margin, opts.min_passage_chars, opts.frame_min_docs))
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def build_pipeline(p: beam.Pipeline, opts: DedupOptions, es=None, mode: str = "full", *,
                   input_files: dict | None = None, workers: int = 1, local: bool = True) -> dict:
    """Wires the job's named transforms onto `p`; returns the main PCollections by name.

    `es`: the Elasticsearch config with its target slot (run() resolves it; default: no slot).
    `mode`: "full" (every unit embedded, signed and matched) or "incremental" (only units not yet
    indexed with the same text and settings; matched against the whole index).
    `input_files`: {pattern: files matched}, for the summary; `workers`, `local`: how progress is
    reported (processes sharing a stage, 0 unknown; whether lines go to the terminal).
    """
    es = es or opts.es_config()
    run_id = opts.run_id or default_run_id(opts)
    signals = opts.signal_list()
    incremental = mode == "incremental"

    match_types = opts.match_unit_list()
    cos_t, jac_t = opts.thresholds()
    params = opts.minhash_params()
    banding = {kind: choose_bands(jac_t[kind], params.num_perm, opts.lsh_target_recall) for kind in match_types}
    info = model_info(opts.model)
    embedding = f"{opts.embed_precision}|{opts.long_texts}"
    split = f"{opts.min_chars}|{opts.unit_list()}|{opts.min_unit_chars}|{match_types}"
    settings = {kind: unit_settings(info["fingerprint"] or opts.model, embedding, params.key, *banding[kind], split)
                for kind in match_types}
    counts = {}

    def progress(name, noun, total=None):
        return Progress(name, noun, total=total, workers=workers, interval_s=opts.progress_interval, local=local)

    read = p | "ReadCorpus" >> ReadCorpus(opts.source_config())
    unique = (read.documents | "ReadProgress" >> progress("read", "documents")
              | "DropDuplicateIds" >> DropDuplicateIds())
    raw = unique.documents | "RawHash" >> beam.Map(with_raw_hash)
    same_docs = None
    if incremental and "document" in match_types:
        # Documents whose raw record and settings are unchanged are not even cleaned again.
        doc_state = raw | "SplitDocsByState" >> SplitDocsByState(es, settings["document"])
        raw, same_docs = doc_state[CHANGED_DOCS_TAG], doc_state[SAME_DOCS_TAG]
        counts["documents_unchanged"] = same_docs
    cleaned = raw | "CleanText" >> CleanDocuments(min_chars=opts.min_chars)
    docs = cleaned.documents | "DetectLanguage" >> DetectLanguage()
    # Template text is a property of the whole corpus: in an incremental run the unchanged documents
    # are cleaned too, for counting only.
    corpus_texts = docs if same_docs is None else (
        docs, (same_docs | "CleanUnchanged" >> CleanDocuments(min_chars=opts.min_chars)).documents
    ) | "CorpusTexts" >> beam.Flatten()
    templates = corpus_texts | "FindTemplates" >> FindTemplates(opts.template_min_docs, opts.template_min_share)
    template_keys = beam.pvalue.AsDict(templates | "TemplateKeys" >> beam.Map(lambda t: (t["key"], t["documents"])))
    # Splitting reads the template side input, which needs every document first: a stage boundary.
    units = (docs | "AwaitTemplates" >> beam.Reshuffle()
             | "SplitUnits" >> SplitUnits(opts.unit_list(), min_chars=opts.min_unit_chars, templates=template_keys))
    formats = opts.output_format_list()
    # Every document of the input, for the canonical choice and the reconciliation of counts.
    all_docs = docs if same_docs is None else (docs, same_docs) | "AllDocuments" >> beam.Flatten()

    def write_table(rows, table, schema):
        return rows | f"Write{''.join(w.title() for w in table.split('_'))}" >> WriteTable(
            opts.output, table, schema, formats=formats, rows_per_file=opts.rows_per_file)

    written_tables = [write_table(units, "units", UNITS_SCHEMA), write_table(templates, "templates", TEMPLATES_SCHEMA)]

    # Units matched against each other: documents, and (by default) paragraphs rolled up below;
    # template paragraphs never are.
    to_match = units | "UnitsToMatch" >> beam.Filter(
        lambda u, types, shortest: u["unit_type"] in types and not u["template"] and (
            u["unit_type"] == "document" or u["end"] - u["start"] >= shortest), match_types, opts.min_passage_chars)
    if incremental:  # only units not yet indexed with this text and these settings go on
        state = to_match | "SplitByState" >> SplitByState(es, settings)
        to_process = state[FRESH_TAG]
        counts.update(units_unchanged=state[UNCHANGED_TAG], units_fresh=to_process)
    else:
        to_process = to_match
    # Shingles, MinHash signature and band keys once per unit; they go to the index with the vector.
    signed = to_process | "MinHashSign" >> SignUnits(params, banding)
    model_hash = info["fingerprint"] or ""

    def embedding_key(u):
        """The key carries the metadata and run state through RunInference: no join back to units."""
        return (tuple((f, u.get(f)) for f in UNIT_FIELDS) + (
            ("id", u["unit_id"]), ("settings", settings[u["unit_type"]]), ("bands", u["bands"]),
            ("shingles", shingles_to_text(u["ids"])), ("model", opts.model), ("model_hash", model_hash)), u["text"])

    # Embed deals the units into fixed groups (one encode call each, the same on every runner): that
    # shuffle also spreads them over the workers, unfused from the read.
    keyed = signed | "KeyForEmbedding" >> beam.Map(embedding_key)
    to_embed = beam.pvalue.AsSingleton(signed | "CountToEmbed" >> beam.combiners.Count.Globally())
    vectors = (keyed
               | "Embed" >> EmbedTexts(opts.model, batch_size=opts.embed_batch_size, min_batch_size=opts.embed_min_batch,
                                       max_batch_size=opts.embed_max_batch, device=opts.device or None,
                                       precision=opts.embed_precision,
                                       torch_threads=opts.torch_threads or None, long_texts=opts.long_texts)
               | "EmbedProgress" >> progress("embed", "units", total=to_embed)
               | "WithMetadata" >> beam.Map(lambda r: {**r, **dict(r["id"])}))

    # What the matching steps read of a vector record (the index gets the whole record): the
    # shingles, bands and settings it also carries would otherwise wait in memory until the searches.
    matchable = vectors | "ForMatching" >> beam.Map(lambda r: {k: r[k] for k in MATCH_FIELDS})
    queries, requery = matchable, None
    if incremental:
        # The unchanged units of a changed document are searched again too (from their stored
        # vectors and shingles), so every match of that document is found, as in a full run.
        touched_docs = ((to_process | "FreshDocs" >> beam.Map(lambda u: u["doc_id"]), state[MOVED_TAG])
                        | "TouchedDocs" >> beam.Flatten() | "DistinctTouched" >> beam.Distinct()
                        | "KeyTouched" >> beam.Map(lambda d: (d, None)))
        unchanged_by_doc = state[UNCHANGED_TAG] | "UnchangedByDoc" >> beam.Map(lambda u: (u["doc_id"], u["unit_id"]))
        requery = ({"touched": touched_docs, "units": unchanged_by_doc} | "JoinUnchangedTouched" >> beam.CoGroupByKey()
                   | "UnchangedOfTouched" >> beam.FlatMap(lambda kv: kv[1]["units"] if kv[1]["touched"] else [])
                   | "FetchRequery" >> FetchStoredUnits(es))
        queries = (matchable, requery) | "KnnQueries" >> beam.Flatten()
        counts["units_requeried"] = requery

    found, dead_letters = [], [read.dead_letter, unique.dead_letter, cleaned.dead_letter]
    min_cos = min(cos_t[t] for t in match_types)
    ready = None
    if opts.vector_store == "elasticsearch":
        written = vectors | "IndexVectors" >> WriteToElasticsearch(es, batch_size=opts.es_batch_size)
        dead_letters.append(written.dead_letter)
        counts.update(indexed=written.indexed, dead_letter_es=written.dead_letter)
        index_changes = [written.indexed]
        if incremental:
            # Units a changed document no longer has, and (optionally) documents absent from the input.
            by_doc = to_match | "UnitIdsByDoc" >> beam.Map(lambda u: (u["doc_id"], u["unit_id"]))
            current = ({"touched": touched_docs, "units": by_doc} | "JoinTouched" >> beam.CoGroupByKey()
                       | "CurrentUnits" >> beam.FlatMap(lambda kv: [(kv[0], kv[1]["units"])] if kv[1]["touched"] else []))
            pruned = current | "PruneStaleUnits" >> PruneStaleUnits(es)
            index_changes.append(pruned | "PrunedAsStr" >> beam.Map(str))
            counts["stale_units_deleted"] = pruned
            if opts.on_deleted == "delete":
                input_ids = read.documents | "InputDocIds" >> beam.Map(lambda d: d["id"]) | "DistinctInputIds" >> beam.Distinct()
                gone = input_ids | "DeleteAbsentDocuments" >> DeleteAbsentDocuments(es)
                index_changes.append(gone)
                counts["absent_documents_deleted"] = gone
        changed = tuple(index_changes) | "AllIndexChanges" >> beam.Flatten() if len(index_changes) > 1 else written.indexed
        # A full run's index is new and complete here: merged, every later kNN query searches fewer graphs.
        ready = changed | "RefreshIndex" >> RefreshIndex(es, point=False,
                                                         merge_segments=0 if incremental else opts.es_merge_segments)
        if "knn" in signals:
            n_queries = beam.pvalue.AsSingleton(queries | "CountQueries" >> beam.combiners.Count.Globally())
            knn = (queries | "KnnProgress" >> progress("knn", "queries", total=n_queries)
                   | "KnnSearch" >> KnnDuplicates(
                       es, ready=ready, k=opts.knn_k, num_candidates=opts.knn_num_candidates, min_cosine=min_cos,
                       exclude_same_document=opts.knn_exclude_same_document, with_neighbourhood=True))
    elif "knn" in signals:
        knn = matchable | "KnnSearch" >> ExactKnnDuplicates(
            k=opts.knn_k, min_cosine=min_cos, exclude_same_document=opts.knn_exclude_same_document,
            with_neighbourhood=True)
    neighbourhood = None
    if "knn" in signals:
        found.append(knn["pairs"])
        neighbourhood = knn["neighbourhood"]
        counts["knn_pairs"] = found[0]

    # MinHash: LSH per unit type (a paragraph is never banded with a whole document) in a full run;
    # in an incremental run, the new units' band keys are looked up among all stored ones.
    all_signatures = (signed | "SignedWithShingles" >> beam.Filter(lambda u: u["ids"].size > 0)
                      | "AsSignatures" >> beam.Map(lambda u: {"id": u["unit_id"], "sig": u["sig"], "ids": u["ids"]}))
    lsh_runs, minhash_pairs, oversized = {}, [], []
    for kind in match_types:
        lsh_runs[kind] = MinHashDuplicates(
            params, jac_t[kind], target_recall=opts.lsh_target_recall, max_bucket=opts.lsh_max_bucket,
            oversize_window=opts.lsh_window, prefilter_margin=opts.lsh_prefilter_margin, signed=True)
        if incremental:
            continue
        typed = all_signatures | f"Only{kind.title()}" >> beam.Filter(
            lambda s, k: parse_unit_id(s["id"])[1] == k, kind)
        result = typed | f"MinHashLSH{kind.title()}" >> lsh_runs[kind]
        minhash_pairs.append(result["pairs"])
        oversized.append(result["oversized"])
    if incremental:
        band_queries = (signed, requery | "RequeryAsSigned" >> beam.Map(
            lambda r: {"unit_id": r["id"], "doc_id": r["doc_id"], "unit_type": r["unit_type"], "bands": r["bands"],
                       "ids": r["ids"]})) | "BandQueries" >> beam.Flatten()
        minhash_pairs.append(band_queries | "BandLookup" >> BandLookup(es, jac_t, ready=ready, max_hits=opts.lsh_max_bucket))
    all_minhash = tuple(minhash_pairs) | "AllMinHashPairs" >> beam.Flatten()
    if "minhash" in signals:
        found.append(all_minhash)

    vectors_all, signatures_all = matchable, all_signatures
    if incremental:
        # Old units in the found pairs (and their documents, for document-level scores) come from the index.
        ends = (tuple(found) | "AllFoundPairs" >> beam.Flatten()
                | "PairEnds" >> beam.FlatMap(lambda r: {u for x in (r["doc_a"], r["doc_b"]) for u in (x, parse_unit_id(x)[0])})
                | "KeyEnds" >> beam.Map(lambda u: (u, None)))
        fresh_ids = queries | "QueryIds" >> beam.Map(lambda r: (r["id"], None))
        old_ids = ({"need": ends, "fresh": fresh_ids} | "JoinEnds" >> beam.CoGroupByKey()
                   | "OnlyOld" >> beam.FlatMap(lambda kv: [kv[0]] if kv[1]["need"] and not kv[1]["fresh"] else []))
        stored = old_ids | "FetchStoredUnits" >> FetchStoredUnits(es)
        counts["stored_units_fetched"] = stored
        vectors_all = (matchable, requery, stored) | "VectorsAll" >> beam.Flatten()
        signatures_all = ((all_signatures, (requery, stored) | "StoredUnits" >> beam.Flatten()
                           | "StoredSignatures" >> beam.Filter(lambda r: r["ids"].size > 0))
                          | "SignaturesAll" >> beam.Flatten())
        if neighbourhood is not None:
            # The margins of pairs with an indexed unit need its neighbourhood too, searched in the
            # current index as a full run over the whole catalogue would.
            stored_knn = (stored | "StoredForMatching" >> beam.Map(lambda r: {k: r[k] for k in MATCH_FIELDS})
                          | "StoredNeighbourhood" >> KnnDuplicates(
                              es, ready=ready, k=opts.knn_k, num_candidates=opts.knn_num_candidates,
                              min_cosine=min_cos, exclude_same_document=opts.knn_exclude_same_document,
                              with_neighbourhood=True))
            neighbourhood = (neighbourhood, stored_knn["neighbourhood"]) | "NeighbourhoodAll" >> beam.Flatten()

    merge = MergeSignals(vectors=vectors_all, signatures=signatures_all, cosine_threshold=cos_t, jaccard_threshold=jac_t,
                         rules=opts.rules(), neighbourhood=neighbourhood,
                         margin_threshold={t: opts.cosine_margin for t in match_types})
    # A passage matching units of as many documents as a template paragraph is a template frame.
    unit_pairs = (tuple(found) | "MergeSignals" >> merge
                  | "DropFramePassages" >> DropFramePassages(opts.frame_min_docs))
    doc_vectors = vectors_all | "DocumentVectors" >> beam.Filter(lambda r: r["unit_type"] == "document")
    doc_signatures = signatures_all | "DocumentSignatures" >> beam.Filter(lambda s: parse_unit_id(s["id"])[1] == "document")
    if "document" not in match_types:
        doc_signatures = None
    rolled = unit_pairs | "RollUp" >> RollUpMatches(
        units=vectors_all, doc_vectors=doc_vectors if "document" in match_types else None, doc_signatures=doc_signatures,
        duplicate_coverage=opts.duplicate_coverage)

    def annotate(row):
        return {**row, "model": opts.model, "run_id": run_id}

    grouped = rolled["documents"] | "DuplicateGroups" >> DuplicateGroups(
        all_docs, policy=opts.canonical_list(), preferred_url=opts.preferred_url, rounds=opts.group_rounds)
    pairs = grouped["pairs"] | "Annotate" >> beam.Map(annotate)
    groups = grouped["groups"] | "AnnotateGroups" >> beam.Map(lambda g: {**g, "run_id": run_id})
    unit_matches = rolled["units"] | "AnnotateUnits" >> beam.Map(annotate)
    written_tables.append(write_table(pairs, "duplicates", DUPLICATES_SCHEMA))
    written_tables.append(write_table(groups, "groups", GROUPS_SCHEMA))
    if opts.bq_output_dataset:
        run_date = opts.run_date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        for table, rows, schema in (("duplicates", pairs, DUPLICATES_SCHEMA), ("groups", groups, GROUPS_SCHEMA),
                                    ("unit_matches", unit_matches, UNIT_MATCHES_SCHEMA)):
            rows | f"BigQuery{table.title()}" >> WriteRunTable(opts.bq_output_dataset, table, schema, run_date)
    written_tables.append(write_table(unit_matches, "unit_matches", UNIT_MATCHES_SCHEMA))

    dead = tuple(dead_letters) | "AllDeadLetters" >> beam.Flatten()
    written_tables.append(dead | "WriteDeadLetters" >> WriteDeadLetters(opts.output))

    def count(name, pcoll):
        return pcoll | f"Count{name}" >> beam.combiners.Count.Globally()

    counts.update({
        "documents_read": read.documents,
        "dead_letter_read": read.dead_letter,
        "dead_letter_duplicate_id": unique.dead_letter,
        "dead_letter_clean": cleaned.dead_letter,
        "units": units,
        "template_paragraphs": templates,
        "template_units": units | "TemplateUnits" >> beam.Filter(lambda u: u["template"]),
        "documents_cleaned": docs,
        "vectors": vectors,
        "signatures": all_signatures,
        "minhash_pairs": all_minhash,
        "lsh_oversized_buckets": (tuple(oversized) if oversized else (p | "NoOversized" >> beam.Create([]),))
                                 | "AllOversized" >> beam.Flatten(),
        "unit_matches": unit_matches,
        "duplicate_pairs": pairs,
        "passage_pairs": pairs | "PassagePairs" >> beam.Filter(lambda r: r["relation"] == "passage"),
        "groups": groups,
    })
    counts = {name: count("".join(w.title() for w in name.split("_")), pc) for name, pc in counts.items()}
    counts["units_by_type"] = units | "UnitsByType" >> CountBy(lambda u: u["unit_type"])
    counts["by_source"] = p | "ReconcileSources" >> ReconcileSources(
        read=read, processed=all_docs, dead=(read.dead_letter, unique.dead_letter, cleaned.dead_letter))
    static = {"run_id": run_id, "input": opts.input or opts.bq_table or opts.bq_query,
              "input_files": input_files or {}, "units": opts.unit_list(), "output": opts.output, "model": opts.model,
              "signals": signals, "cosine_threshold": opts.cosine_threshold,
              "jaccard_threshold": opts.jaccard_threshold, "es_index": opts.es_index,
              "knn": {"k": opts.knn_k, "num_candidates": opts.knn_num_candidates},
              "vector_store": opts.vector_store, "index_options": opts.es_index_options,
              "es_merge_segments": 0 if incremental else opts.es_merge_segments,
              "es_physical_index": es.physical_index if opts.vector_store == "elasticsearch" else None,
              "match_units": match_types,
              "rule": opts.rule or None, "unit_rule": opts.unit_rule or None,
              "canonical_policy": opts.canonical_list(),
              "templates": {"min_docs": opts.template_min_docs, "min_share": opts.template_min_share},
              "duplicate_coverage": opts.duplicate_coverage, "cosine_margin": opts.cosine_margin,
              "min_passage_chars": opts.min_passage_chars, "frame_min_docs": opts.frame_min_docs, "unit_cosine_threshold": opts.unit_cosine_threshold, "unit_jaccard_threshold": opts.unit_jaccard_threshold,
              "lsh": {kind: run.describe() for kind, run in lsh_runs.items()},
              "model_info": info, "mode": mode, "unit_settings": settings,
              "embedding": {"precision": opts.embed_precision, "long_texts": opts.long_texts,
                            "batch_size": opts.embed_batch_size or "auto"}}
    summary = p | "WriteSummary" >> WriteSummary(opts.output, counts, static)
    last = [*written_tables, summary]
    if opts.report_top > 0:
        last.append(p | "RunReport" >> BuildRunReport(opts.output, summary=summary, pairs=pairs, groups=groups,
                                                      docs=docs, scored=merge.scored, top=opts.report_top,
                                                      templates=templates))
    if opts.vector_store == "elasticsearch":  # readers switch to the new index once everything is written
        p | "PointAlias" >> PointAlias(es, after=last)
    return {"documents": docs, "vectors": vectors, "pairs": pairs, "dead_letter": dead}


def run(argv=None) -> "beam.runners.runner.PipelineResult":
    """Parses options, checks Elasticsearch before any heavy work, runs the job and waits for it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    check_arguments(argv)  # Beam would only log and drop what it does not know
    options = PipelineOptions(argv)
    opts = options.view_as(DedupOptions)
    opts.validate_job()
    # The run id names the input as given; the workers (other processes on a portable runner) get
    # absolute paths.
    opts.run_id = opts.run_id or default_run_id(opts)
    absolute_paths(opts)
    if default_process_environment(options):
        _LOG.info("PROCESS environment: SDK workers start with %s", options.view_as(PortableOptions).environment_config)
    input_files = count_input_files(opts.input) if opts.input else {}
    for pattern, n in input_files.items():
        _LOG.info("input %s: %d file(s)", pattern, n)
    es = opts.es_config()
    mode = "full"
    if opts.vector_store == "elasticsearch":
        health = check_cluster(es)  # pre-flight: a wrong URL or credentials fail here, not after an hour
        _LOG.info("Elasticsearch %s is %s", es.safe_url, health.get("status"))
        # full: a fresh blue/green slot, the alias swapped at the end; incremental: the live slot.
        es, mode = resolve_target(es, "full" if opts.recreate_index else opts.mode)
        if mode != opts.mode:
            _LOG.warning("no index of this model and these settings behind alias %s: this run builds one in full",
                         es.index)
        _LOG.info("mode %s, writing %s", mode, es.physical_index)
    if opts.bq_output_dataset:  # re-running a run replaces its rows in BigQuery
        run_id = opts.run_id or default_run_id(opts)
        _LOG.info("deleted earlier rows of run %s: %s", run_id, delete_run_rows(opts.bq_output_dataset, run_id))
    if not opts.torch_threads:  # local multi_processing: share the cores among the workers
        opts.torch_threads = local_torch_threads(options)
    removed = clear_outputs(opts.output)
    if removed:
        _LOG.info("removed %d files of an earlier run under %s", removed, opts.output)
    pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
    build_pipeline(pipeline, opts, es=es, mode=mode, input_files=input_files,
                   workers=progress_workers(options), local=is_direct(options))
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        close_job_streams(result)
    return result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(job_help())
        return 0
    if "--help_beam" in argv:
        print(beam_help())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("elastic_transport", "urllib3", "apache_beam.runners", "apache_beam.io",
                  "apache_beam.ml", "apache_beam.typehints", "sentence_transformers", "trafilatura", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        run(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_run_summary(PipelineOptions(argv).view_as(DedupOptions).output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
