"""The near-duplicate detection job: two short builders over the stages of pipelines/stages.py.

    python -m pipelines.dedup --input demo/corpus.jsonl --output out/demo \\
        --es_url http://127.0.0.1:9200 --es_index dedup-demo

Full job (each name is a top-level step of the Beam graph; ARCHITECTURE.md draws it):

    ReadDocuments -> CleanAndDetect -> PrepareUnits -> SignAndEmbed -> IndexVectors
      SignAndEmbed.matchable -> SemanticMatch (kNN, after IndexVectors.ready) --+
      SignAndEmbed.signatures -> LexicalMatch (MinHash LSH, exact Jaccard) ------+-> ScoreAndRollUp
      -> GroupDuplicates -> WritePairTables; WriteUnits, WriteTemplates; StoreNeighbourhoods; WriteSummary -> RunReport
      -> PointAlias

The incremental job replaces LexicalMatch by LookupBands (band keys of the stored units), and adds
SplitDocuments/SplitUnitsByState (what is indexed unchanged), Requery, CleanIndex and StoredEnds
(pipelines/incremental_stages.py).
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import shutil
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions

from pipelines import incremental_stages as inc
from pipelines.config import JobConfig
from pipelines.options import DedupOptions, beam_help, check_arguments, count_input_files, job_help
from pipelines.runner import (absolute_paths, choose_runner, close_job_streams, default_process_environment, exit_process,
                              is_direct, local_torch_threads, progress_workers)
from pipelines.stages import (CleanAndDetect, CurrentState, GroupDuplicates, IndexVectors, Job, LexicalMatch, PrepareUnits,
                              ReadDocuments, ScoreAndRollUp, SemanticMatch, SignAndEmbed, WritePairTables,
                              annotate_units, lsh_runs, table_label)
from transforms.io.bq_sink import delete_run_rows
from transforms.io.elasticsearch_store import PointAlias, check_cluster, resolve_target
from transforms.io.lease import EsLease, LeaseHeld
from transforms.io.neighbourhood_store import WriteNeighbourhoods, around_index, new_generation
from transforms.io.run_state import WriteRunState
from transforms.io.sinks import TEMPLATES_SCHEMA, UNITS_SCHEMA, CountBy, ReconcileSources, WriteSummary, clear_outputs
from transforms.records import ConfigError
from transforms.signals.models import check_model
from transforms.reporting.report import print_run_summary
from transforms.reporting.run_report import BuildRunReport

_LOG = logging.getLogger(__name__)


def build_full(p: beam.Pipeline, job: Job, input_files: dict | None = None) -> dict:
    """The full job: every unit embedded, signed and matched; a new index swapped in at the end."""
    cfg = job.cfg
    read = p | "ReadDocuments" >> ReadDocuments(job)
    clean = read["documents"] | "CleanAndDetect" >> CleanAndDetect(job)
    docs = clean["documents"]
    prepared = docs | "PrepareUnits" >> PrepareUnits(job)
    signed = prepared["to_match"] | "SignAndEmbed" >> SignAndEmbed(job)
    counts, dead = {}, [read["dead_letter_read"], read["dead_letter_duplicate_id"], clean["dead_letter"]]
    ready = None
    if job.uses_index:
        index = signed["vectors"] | "IndexVectors" >> IndexVectors(job, merge_segments=cfg.es_merge_segments)
        ready = index["ready"]
        dead.append(index["dead_letter"])
        counts.update(indexed=index["indexed"], dead_letter_es=index["dead_letter"])
    found, neighbourhood, searched = [], None, []
    if "knn" in cfg.signals:
        knn = signed["matchable"] | "SemanticMatch" >> SemanticMatch(job, ready=ready)
        found.append(knn["pairs"])
        neighbourhood = knn["neighbourhood"]
        searched = [knn["neighbours"]] if "neighbours" in knn else []
        counts["knn_pairs"] = knn["pairs"]
    lexical = signed["signatures"] | "LexicalMatch" >> LexicalMatch(job)
    if "minhash" in cfg.signals:
        found.append(lexical["pairs"])
    scored = tuple(found) | "ScoreAndRollUp" >> ScoreAndRollUp(
        job, vectors=signed["matchable"], signatures=signed["signatures"], neighbourhood=neighbourhood,
        tokens=signed["tokens"])
    counts.update(minhash_pairs=lexical["pairs"], lsh_oversized_buckets=lexical["oversized"])
    return finish(p, job, mode="full", read=read, clean=clean, all_docs=docs, prepared=prepared, signed=signed,
                  scored=scored, dead=dead, counts=counts, input_files=input_files, affected=None, searched=searched)


def build_incremental(p: beam.Pipeline, job: Job, input_files: dict | None = None) -> dict:
    """The incremental job: only units not yet indexed with the same text and settings are embedded
    and signed; they (and the unchanged units of their documents) are matched against the whole index."""
    read = p | "ReadDocuments" >> ReadDocuments(job)
    split_docs = read["documents"] | "SplitDocuments" >> inc.SplitDocuments(job)
    clean = split_docs["changed"] | "CleanAndDetect" >> CleanAndDetect(job)
    docs, same = clean["documents"], split_docs["same"]
    counts, all_docs, corpus = {}, docs, None
    if same is not None:
        counts["documents_unchanged"] = same
        all_docs = (docs, same) | "AllDocuments" >> beam.Flatten()
        # Unchanged documents are cleaned for template counting only (from their raw records: the
        # `same` stubs have no text).
        unchanged_texts = (split_docs["same_raw"] | "CleanUnchanged" >> CleanAndDetect(job))["documents"]
        corpus = (docs, unchanged_texts) | "CorpusTexts" >> beam.Flatten()
    prepared = docs | "PrepareUnits" >> PrepareUnits(job, corpus=corpus)
    state = prepared["to_match"] | "SplitUnitsByState" >> inc.SplitUnits(job)
    signed = state["fresh"] | "SignAndEmbed" >> SignAndEmbed(job)
    input_ids = read["read"] | "InputDocIds" >> beam.Map(lambda d: d["id"])
    cleaned = prepared["to_match"] | "CleanIndex" >> inc.CleanIndex(job, state["touched"], input_ids)
    index = signed["vectors"] | "IndexVectors" >> IndexVectors(job, also=[cleaned["changes"]])
    requery = state["unchanged"] | "Requery" >> inc.Requery(job, state["touched"])
    queries = (signed["matchable"], requery) | "KnnQueries" >> beam.Flatten()
    found, knn = [], None
    if "knn" in job.cfg.signals:
        knn = queries | "SemanticMatch" >> SemanticMatch(job, ready=index["ready"])
        found.append(knn["pairs"])
        counts["knn_pairs"] = knn["pairs"]
    lexical = (signed["signed"], requery) | "LookupBands" >> inc.LookupBands(job, ready=index["ready"])
    if "minhash" in job.cfg.signals:
        found.append(lexical)
    ends = tuple(found) | "StoredEnds" >> inc.StoredEnds(job, queries=queries, ready=index["ready"],
                                                           with_neighbourhood=knn is not None)
    vectors = (signed["matchable"], requery, ends["stored"]) | "VectorsAll" >> beam.Flatten()
    stored_units = (requery, ends["stored"]) | "StoredUnits" >> beam.Flatten()
    signatures = ((signed["signatures"], stored_units | "StoredSignatures" >> beam.Filter(lambda r: r["ids"].size > 0))
                  | "SignaturesAll" >> beam.Flatten())
    tokens = ((signed["tokens"], stored_units | "StoredTokens" >> beam.FlatMap(
        lambda r: [(r["id"], r["tokens"])] if r.get("tokens") is not None else [])) | "TokensAll" >> beam.Flatten())
    neighbourhood = None if knn is None else (
        (knn["neighbourhood"], ends["neighbourhood"]) | "NeighbourhoodAll" >> beam.Flatten())
    searched = [] if knn is None else [pc for pc in (knn.get("neighbours"), ends["neighbours"]) if pc is not None]
    scored = tuple(found) | "ScoreAndRollUp" >> ScoreAndRollUp(job, vectors=vectors, signatures=signatures,
                                                               neighbourhood=neighbourhood, tokens=tokens)
    counts.update(units_unchanged=state["unchanged"], units_fresh=state["fresh"], units_requeried=requery,
                  indexed=index["indexed"], dead_letter_es=index["dead_letter"],
                  stored_units_fetched=ends["stored"], minhash_pairs=lexical,
                  lsh_oversized_buckets=p | "NoOversized" >> beam.Create([]),
                  **{k: v for k, v in cleaned.items() if k != "changes"})
    dead = [read["dead_letter_read"], read["dead_letter_duplicate_id"], clean["dead_letter"], index["dead_letter"]]
    # The stored pairs of documents searched again (touched) or deleted are replaced by this run's.
    affected = [state["touched"] | "TouchedIds" >> beam.Map(lambda kv: kv[0])]
    if "absent_documents_deleted" in cleaned:
        affected.append(cleaned["absent_documents_deleted"])
    affected = tuple(affected) | "AffectedDocs" >> beam.Flatten()
    return finish(p, job, mode="incremental", read=read, clean=clean, all_docs=all_docs, prepared=prepared,
                  signed=signed, scored=scored, dead=dead, counts=counts, input_files=input_files, affected=affected,
                  searched=searched)


def finish(p, job: Job, *, mode, read, clean, all_docs, prepared, signed, scored, dead, counts, input_files,
           affected, searched=()) -> dict:
    """Groups, current state, tables, summary, report and (Elasticsearch) the alias switch, shared by
    both jobs. `affected`: ids of the documents whose stored pairs this run replaces (None: all);
    `searched`: (unit id, its kNN neighbours) of every unit this run searched, stored for the draft check."""
    cfg = job.cfg
    around, generation = None, None
    if job.uses_index and searched:
        generation = new_generation()
        around = tuple(searched) | "StoreNeighbourhoods" >> WriteNeighbourhoods(
            job.es.connection, job.es.physical_index, generation)
        dead = [*dead, around.dead_letter]
        counts.update(neighbourhoods_stored=around.written, dead_letter_neighbourhoods=around.dead_letter)
    if mode == "full":
        grouped = scored["documents"] | "GroupDuplicates" >> GroupDuplicates(job, all_docs)
        pairs, groups = grouped["pairs"], grouped["groups"]
        current = {"pairs": pairs, "groups": groups, "docs": all_docs} | "CurrentState" >> CurrentState(job, mode)
    else:  # an incremental run's own rows carry the groups of the whole catalogue
        current = ({"found": scored["documents"], "docs": all_docs, "affected": affected}
                   | "CurrentState" >> CurrentState(job, mode))
        pairs, groups = current["run_pairs"], current["run_groups"]
    unit_matches = annotate_units(job, scored["units"])
    dead_letters = (*dead, current["dead_letter"]) | "AllDeadLetters" >> beam.Flatten()
    units, templates = prepared["units"], prepared["templates"]
    run_date = cfg.run_date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    written = [units | table_label("units") >> job.table("units", UNITS_SCHEMA),
               templates | table_label("templates") >> job.table("templates", TEMPLATES_SCHEMA),
               {"pairs": pairs, "groups": groups, "unit_matches": unit_matches, "dead_letter": dead_letters,
                "current_pairs": current["pairs"], "current_groups": current["groups"]}
               | "WritePairTables" >> WritePairTables(job, run_date), current["written"]]
    counts.update({
        "documents_read": read["read"], "dead_letter_read": read["dead_letter_read"],
        "dead_letter_duplicate_id": read["dead_letter_duplicate_id"], "dead_letter_clean": clean["dead_letter"],
        "units": units, "template_paragraphs": templates,
        "template_units": units | "TemplateUnits" >> beam.Filter(lambda u: u["template"]),
        "documents_cleaned": clean["documents"], "vectors": signed["vectors"],
        "texts_embedded": signed["texts_embedded"], "signatures": signed["signatures"],
        "unit_matches": unit_matches, "duplicate_pairs": pairs,
        "passage_pairs": pairs | "PassagePairs" >> beam.Filter(lambda r: r["relation"] == "passage"),
        "groups": groups, "current_pairs": current["pairs"], "current_groups": current["groups"],
    })
    counts = {name: pc | f"Count{''.join(w.title() for w in name.split('_'))}" >> beam.combiners.Count.Globally()
              for name, pc in counts.items()}
    counts["units_by_type"] = units | "UnitsByType" >> CountBy(lambda u: u["unit_type"])
    counts["embedded_by"] = signed["texts_embedded"] | "EmbeddedBy" >> CountBy(lambda r: r.get("backend") or "unknown")
    counts["current_groups_by_change"] = current["groups"] | "CurrentGroupsByChange" >> CountBy(lambda g: g["change"])
    counts["by_source"] = p | "ReconcileSources" >> ReconcileSources(
        read=read["read"], read_dead=read["dead_letter_read"], processed=all_docs,
        dead=(read["dead_letter_read"], read["dead_letter_duplicate_id"], clean["dead_letter"]))
    summary = p | "WriteSummary" >> WriteSummary(cfg.output, counts, summary_settings(job, mode, input_files))
    last = [*written, summary] + ([around.written] if around is not None else [])
    if cfg.report_top > 0:
        last.append(p | "RunReport" >> BuildRunReport(cfg.output, summary=summary, pairs=pairs, groups=groups,
                                                      docs=clean["documents"], scored=scored["scored"],
                                                      top=cfg.report_top, templates=templates))
    if job.uses_index:  # readers switch to the new index once everything is written
        # What a reader of the index (the draft check, service/) needs to treat new text as this run did.
        last.append({"templates": templates, "frames": scored["frames"]} | "WriteRunState" >> WriteRunState(job.es, {
            "run_id": cfg.effective_run_id, "mode": mode, "settings": cfg.settings(),
            "unit_settings": job.unit_settings, "model": job.model,
            "neighbourhoods": {"index": around_index(job.es.physical_index), "generation": generation} if generation else None}))
        p | "PointAlias" >> PointAlias(job.es, after=last)
    return {"documents": clean["documents"], "vectors": signed["vectors"], "pairs": pairs, "dead_letter": dead_letters}


def summary_settings(job: Job, mode: str, input_files: dict | None) -> dict:
    """The summary's fixed part: every setting (from the config), and what was derived from them."""
    cfg = job.cfg
    return {"run_id": cfg.effective_run_id, "input": cfg.input or cfg.bq_table or cfg.bq_query,
            "input_files": input_files or {}, "units": list(cfg.units), "output": cfg.output, "model": cfg.model,
            "signals": list(cfg.signals), "cosine_threshold": cfg.cosine_threshold,
            "jaccard_threshold": cfg.jaccard_threshold, "es_index": cfg.es_index,
            "knn": {"k": cfg.knn_k, "num_candidates": cfg.knn_num_candidates,
                    "document_search": cfg.document_search},
            "vector_store": cfg.vector_store, "index_options": cfg.es_index_options,
            "es_merge_segments": 0 if mode == "incremental" else cfg.es_merge_segments,
            "es_physical_index": job.es.physical_index if job.uses_index else None,
            "match_units": list(cfg.match_units), "rule": cfg.rule or None, "unit_rule": cfg.unit_rule or None,
            "canonical_policy": list(cfg.canonical_policy),
            "templates": {"min_docs": cfg.template_min_docs, "min_share": cfg.template_min_share},
            "duplicate_coverage": cfg.duplicate_coverage, "cosine_margin": cfg.cosine_margin, "unit_cosine_margin": cfg.unit_cosine_margin,
            "combined": {"jaccard": cfg.combined_jaccard, "cosine": cfg.combined_cosine},
            "aligned": {"aligned": cfg.aligned_threshold, "small_edits": cfg.aligned_small_edits,
                        "cosine": cfg.aligned_cosine} if cfg.aligned() else None,
            "containment": {"containment": cfg.containment_threshold, "cosine": cfg.containment_cosine,
                            "min_shingles": cfg.containment_min_shingles} if cfg.contained() else None,
            "common_source_cosine": cfg.common_source_cosine or None,
            "knn_floors": job.min_cosine,
            "min_passage_chars": cfg.min_passage_chars, "frame_min_docs": cfg.frame_min_docs,
            "unit_cosine_threshold": cfg.unit_cosine_threshold, "unit_jaccard_threshold": cfg.unit_jaccard_threshold,
            "lsh": {kind: run.describe() for kind, run in lsh_runs(job).items()},
            "model_info": job.model, "mode": mode, "unit_settings": job.unit_settings,
            "embedding": {"backend": cfg.embed_backend, "precision": cfg.embed_precision, "long_texts": cfg.long_texts,
                          "batch_size": cfg.embed_batch_size or "auto", "distinct_texts": cfg.embed_distinct_texts},
            "settings": cfg.settings()}


def build_pipeline(p: beam.Pipeline, opts, es=None, mode: str = "full", *, input_files: dict | None = None,
                   workers: int = 1, local: bool = True) -> dict:
    """Wires the full or incremental job onto `p`; returns its main PCollections by name.

    `opts`: DedupOptions (or a JobConfig); `es`: the Elasticsearch target with its slot (run()
    resolves it; default: no slot); `workers`, `local`: how progress is reported."""
    cfg = opts if isinstance(opts, JobConfig) else JobConfig.from_options(opts)
    job = Job.create(cfg.replace(mode=mode), es, workers=workers, local=local)
    builder = build_incremental if mode == "incremental" else build_full
    return builder(p, job, input_files)


def run(argv=None) -> "beam.runners.runner.PipelineResult":
    """Parses options, checks Elasticsearch before any heavy work, runs the job and waits for it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    check_arguments(argv)  # Beam would only log and drop what it does not know
    options = PipelineOptions(argv)
    opts = options.view_as(DedupOptions)
    opts.validate_job()
    # The run id names the input as given; the workers (other processes on a portable runner) get
    # absolute paths.
    opts.run_id = JobConfig.from_options(opts).effective_run_id
    absolute_paths(opts)
    if default_process_environment(options):
        _LOG.info("PROCESS environment: SDK workers start with %s", options.view_as(PortableOptions).environment_config)
    if not opts.torch_threads:  # local multi_processing: share the cores among the workers
        opts.torch_threads = local_torch_threads(options)
    cfg = JobConfig.from_options(opts)
    try:  # pre-flight: a misspelt model fails here, not in a worker's traceback after the input is read
        check_model(cfg.model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    input_files = count_input_files(cfg.input) if cfg.input else {}
    for pattern, n in input_files.items():
        _LOG.info("input %s: %d file(s)", pattern, n)
    es, mode, lease = cfg.es_config(), "full", None
    if cfg.vector_store == "elasticsearch":
        health = check_cluster(es)  # pre-flight: a wrong URL or credentials fail here, not after an hour
        _LOG.info("Elasticsearch %s is %s", es.safe_url, health.get("status"))
        # One run at a time per alias, before anything touches an index: a second one is refused.
        lease = EsLease(es.connection, es.index, {"run_id": cfg.run_id, "mode": cfg.mode,
                                                  "input": cfg.input or cfg.bq_table or cfg.bq_query},
                        ttl_s=cfg.lease_ttl)
        try:
            lease.acquire(wait_s=cfg.wait_for_lease)
        except LeaseHeld as exc:
            raise ConfigError(str(exc)) from None
    try:
        if lease is not None:
            # full: a fresh blue/green slot, the alias swapped at the end; incremental: the live slot.
            es, mode = resolve_target(es, "full" if cfg.recreate_index else cfg.mode)
            if mode != cfg.mode:
                _LOG.warning("no index of this model and these settings behind alias %s: this run builds one in "
                             "full", es.index)
            _LOG.info("mode %s, writing %s", mode, es.physical_index)
        if cfg.bq_output_dataset:  # re-running a run replaces its rows in BigQuery
            _LOG.info("deleted earlier rows of run %s: %s", cfg.run_id, delete_run_rows(cfg.bq_output_dataset,
                                                                                          cfg.run_id))
        removed = clear_outputs(cfg.output)
        if removed:
            _LOG.info("removed %d files of an earlier run under %s", removed, cfg.output)
        pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
        try:
            build_pipeline(pipeline, cfg, es=es, mode=mode, input_files=input_files,
                           workers=progress_workers(options), local=is_direct(options))
        except BaseException:  # Pipeline.run() removes its local temp folder; a job that never runs must too
            shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
            raise
        with lease.kept_alive() if lease is not None else contextlib.nullcontext():
            result = pipeline.run()
            try:
                result.wait_until_finish()
            finally:
                close_job_streams(result)
    finally:
        if lease is not None:
            lease.release()
    return result


TASKMANAGER_LOST = (
    "hint: a Flink TaskManager ended during the job; its log (.services/flink-taskmanager*.log on the local "
    "cluster) says why. 'Terminating due to java.lang.OutOfMemoryError' there means its heap was too small for "
    "this job: Beam's Flink runner holds a partition's whole output until the partition is done, and keeps "
    "every task's stage description for the life of the SDK worker. Give the TaskManagers more memory "
    "(make flink-stop; FLINK_TM_PROCESS=4000m make flink-start) and see README, 'Running on Flink'.")


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
    except RuntimeError as exc:  # the engine's failure, with the worker's traceback: kept, and explained
        if "TaskManager" in str(exc) and "no longer reachable" in str(exc):
            print(TASKMANAGER_LOST, file=sys.stderr)
        raise
    print_run_summary(PipelineOptions(argv).view_as(DedupOptions).output)
    return 0


if __name__ == "__main__":
    exit_process(main(sys.argv[1:]))
