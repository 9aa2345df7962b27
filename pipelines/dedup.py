"""The near-duplicate detection job.

    python -m pipelines.dedup --input demo/corpus.jsonl --output out/demo \\
        --es_url http://127.0.0.1:9200 --es_index dedup-demo

DAG (each name is a step of the Beam graph):

    ReadCorpus -> DropDuplicateIds -> CleanText -> DetectLanguage -> SplitUnits -> WriteUnits
    SplitUnits -> UnitsToMatch -> KeyForEmbedding -> Embed -> IndexVectors -> RefreshIndex -> KnnSearch --+
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
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.options import DedupOptions
from pipelines.runner import choose_runner
from transforms.elasticsearch_io import RefreshIndex, WriteToElasticsearch, check_cluster
from transforms.embed import EmbedTexts, model_info
from transforms.ingest import DropDuplicateIds, ReadCorpus
from transforms.language import DetectLanguage
from transforms.units import SplitUnits
from transforms.knn import KnnDuplicates
from transforms.lsh import MinHashDuplicates
from transforms.merge import MergeSignals
from transforms.normalize import CleanDocuments
from transforms.report import print_run_summary
from transforms.run_report import BuildRunReport
from transforms.records import ConfigError
from transforms.vector_memory import ExactKnnDuplicates
from transforms.groups import DuplicateGroups
from transforms.rollup import RollUpMatches
from transforms.bq_sink import WriteRunTable, delete_run_rows
from transforms.sinks import (DUPLICATES_SCHEMA, GROUPS_SCHEMA, UNIT_MATCHES_SCHEMA, UNITS_SCHEMA, CountBy, ReconcileSources, WriteDeadLetters,
                             WriteSummary, WriteTable, clear_outputs)

_LOG = logging.getLogger(__name__)
UNIT_FIELDS = ("unit_id", "doc_id", "unit_type", "unit_index", "start", "end", "doc_chars", "content_hash",
               "title", "url", "lang")


def default_run_id(opts: DedupOptions) -> str:
    """Deterministic run id: the same input and settings give the same id (and identical rows)."""
    key = "|".join(str(x) for x in (opts.input, opts.bq_table, opts.bq_query, opts.model, opts.cosine_threshold, opts.knn_k,
                                     opts.knn_num_candidates, opts.es_index, opts.min_chars, opts.signals,
                                     opts.jaccard_threshold, opts.minhash_params().key, opts.match_units,
                                     opts.unit_cosine_threshold, opts.unit_jaccard_threshold,
                                     opts.canonical_policy, opts.preferred_url, opts.rule, opts.unit_rule))
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def build_pipeline(p: beam.Pipeline, opts: DedupOptions) -> dict:
    """Wires the job's named transforms onto `p`; returns the main PCollections by name."""
    es = opts.es_config()
    run_id = opts.run_id or default_run_id(opts)
    signals = opts.signal_list()

    read = p | "ReadCorpus" >> ReadCorpus(opts.source_config())
    unique = read.documents | "DropDuplicateIds" >> DropDuplicateIds()
    cleaned = unique.documents | "CleanText" >> CleanDocuments(min_chars=opts.min_chars)
    docs = cleaned.documents | "DetectLanguage" >> DetectLanguage()
    units = docs | "SplitUnits" >> SplitUnits(opts.unit_list(), min_chars=opts.min_unit_chars)
    formats = opts.output_format_list()

    def write_table(rows, table, schema):
        return rows | f"Write{''.join(w.title() for w in table.split('_'))}" >> WriteTable(
            opts.output, table, schema, formats=formats, rows_per_file=opts.rows_per_file)

    write_table(units, "units", UNITS_SCHEMA)

    # Units matched against each other: documents, and (by default) paragraphs rolled up below.
    match_types = opts.match_unit_list()
    cos_t, jac_t = opts.thresholds()
    to_match = units | "UnitsToMatch" >> beam.Filter(lambda u, types: u["unit_type"] in types, match_types)
    # The key carries the metadata through RunInference, so vectors need no join back to units.
    keyed = to_match | "KeyForEmbedding" >> beam.Map(
        lambda u: (tuple((f, u.get(f)) for f in UNIT_FIELDS) + (("id", u["unit_id"]),), u["text"]))
    vectors = (keyed
               | "Embed" >> EmbedTexts(opts.model, batch_size=opts.embed_batch_size, min_batch_size=opts.embed_min_batch,
                                       max_batch_size=opts.embed_max_batch, device=opts.device or None,
                                       precision=opts.embed_precision,
                                       torch_threads=opts.torch_threads or None, long_texts=opts.long_texts)
               | "WithMetadata" >> beam.Map(lambda r: {**r, **dict(r["id"])}))

    found, dead_letters = [], [read.dead_letter, unique.dead_letter, cleaned.dead_letter]
    counts = {}
    min_cos = min(cos_t[t] for t in match_types)
    if opts.vector_store == "elasticsearch":
        written = vectors | "IndexVectors" >> WriteToElasticsearch(es, batch_size=opts.es_batch_size)
        dead_letters.append(written.dead_letter)
        counts.update(indexed=written.indexed, dead_letter_es=written.dead_letter)
        ready = written.indexed | "RefreshIndex" >> RefreshIndex(es)
        if "knn" in signals:
            found.append(vectors | "KnnSearch" >> KnnDuplicates(
                es, ready=ready, k=opts.knn_k, num_candidates=opts.knn_num_candidates,
                min_cosine=min_cos, exclude_same_document=opts.knn_exclude_same_document))
    elif "knn" in signals:
        found.append(vectors | "KnnSearch" >> ExactKnnDuplicates(
            k=opts.knn_k, min_cosine=min_cos, exclude_same_document=opts.knn_exclude_same_document))
    if "knn" in signals:
        counts["knn_pairs"] = found[0]

    # MinHash LSH per unit type (a paragraph is never banded with a whole document).
    lsh_runs, signatures, minhash_pairs, oversized = {}, [], [], []
    for kind in match_types:
        lsh_runs[kind] = MinHashDuplicates(
            opts.minhash_params(), jac_t[kind], target_recall=opts.lsh_target_recall, max_bucket=opts.lsh_max_bucket,
            oversize_window=opts.lsh_window, prefilter_margin=opts.lsh_prefilter_margin)
        typed = (to_match | f"Only{kind.title()}" >> beam.Filter(lambda u, k: u["unit_type"] == k, kind)
                 | f"AsLshInput{kind.title()}" >> beam.Map(lambda u: {"id": u["unit_id"], "text": u["text"]}))
        result = typed | f"MinHashLSH{kind.title()}" >> lsh_runs[kind]
        signatures.append(result["signatures"])
        minhash_pairs.append(result["pairs"])
        oversized.append(result["oversized"])
    all_signatures = tuple(signatures) | "AllSignatures" >> beam.Flatten()
    all_minhash = tuple(minhash_pairs) | "AllMinHashPairs" >> beam.Flatten()
    if "minhash" in signals:
        found.append(all_minhash)

    merge = MergeSignals(vectors=vectors, signatures=all_signatures, cosine_threshold=cos_t, jaccard_threshold=jac_t,
                         rules=opts.rules())
    unit_pairs = tuple(found) | "MergeSignals" >> merge
    doc_vectors = vectors | "DocumentVectors" >> beam.Filter(lambda r: r["unit_type"] == "document")
    doc_signatures = (signatures[match_types.index("document")] if "document" in match_types else None)
    rolled = unit_pairs | "RollUp" >> RollUpMatches(
        units=vectors, doc_vectors=doc_vectors if "document" in match_types else None, doc_signatures=doc_signatures)

    def annotate(row):
        return {**row, "model": opts.model, "run_id": run_id}

    grouped = rolled["documents"] | "DuplicateGroups" >> DuplicateGroups(
        docs, policy=opts.canonical_list(), preferred_url=opts.preferred_url, rounds=opts.group_rounds)
    pairs = grouped["pairs"] | "Annotate" >> beam.Map(annotate)
    groups = grouped["groups"] | "AnnotateGroups" >> beam.Map(lambda g: {**g, "run_id": run_id})
    unit_matches = rolled["units"] | "AnnotateUnits" >> beam.Map(annotate)
    write_table(pairs, "duplicates", DUPLICATES_SCHEMA)
    write_table(groups, "groups", GROUPS_SCHEMA)
    if opts.bq_output_dataset:
        run_date = opts.run_date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        for table, rows, schema in (("duplicates", pairs, DUPLICATES_SCHEMA), ("groups", groups, GROUPS_SCHEMA),
                                    ("unit_matches", unit_matches, UNIT_MATCHES_SCHEMA)):
            rows | f"BigQuery{table.title()}" >> WriteRunTable(opts.bq_output_dataset, table, schema, run_date)
    write_table(unit_matches, "unit_matches", UNIT_MATCHES_SCHEMA)

    dead = tuple(dead_letters) | "AllDeadLetters" >> beam.Flatten()
    dead | "WriteDeadLetters" >> WriteDeadLetters(opts.output)

    def count(name, pcoll):
        return pcoll | f"Count{name}" >> beam.combiners.Count.Globally()

    counts.update({
        "documents_read": read.documents,
        "dead_letter_read": read.dead_letter,
        "dead_letter_duplicate_id": unique.dead_letter,
        "dead_letter_clean": cleaned.dead_letter,
        "units": units,
        "documents_cleaned": docs,
        "vectors": vectors,
        "signatures": all_signatures,
        "minhash_pairs": all_minhash,
        "lsh_oversized_buckets": tuple(oversized) | "AllOversized" >> beam.Flatten(),
        "unit_matches": unit_matches,
        "duplicate_pairs": pairs,
        "groups": groups,
    })
    counts = {name: count("".join(w.title() for w in name.split("_")), pc) for name, pc in counts.items()}
    counts["units_by_type"] = units | "UnitsByType" >> CountBy(lambda u: u["unit_type"])
    counts["by_source"] = p | "ReconcileSources" >> ReconcileSources(
        read=read, processed=docs, dead=(read.dead_letter, unique.dead_letter, cleaned.dead_letter))
    static = {"run_id": run_id, "input": opts.input or opts.bq_table or opts.bq_query, "units": opts.unit_list(), "output": opts.output, "model": opts.model,
              "signals": signals, "cosine_threshold": opts.cosine_threshold,
              "jaccard_threshold": opts.jaccard_threshold, "es_index": opts.es_index,
              "knn": {"k": opts.knn_k, "num_candidates": opts.knn_num_candidates},
              "vector_store": opts.vector_store, "index_options": opts.es_index_options,
              "es_physical_index": es.physical_index if opts.vector_store == "elasticsearch" else None,
              "match_units": match_types,
              "rule": opts.rule or None, "unit_rule": opts.unit_rule or None,
              "canonical_policy": opts.canonical_list(), "unit_cosine_threshold": opts.unit_cosine_threshold, "unit_jaccard_threshold": opts.unit_jaccard_threshold,
              "lsh": {kind: run.describe() for kind, run in lsh_runs.items()},
              "model_info": model_info(opts.model),
              "embedding": {"precision": opts.embed_precision, "long_texts": opts.long_texts,
                            "batch_size": opts.embed_batch_size or "auto"}}
    summary = p | "WriteSummary" >> WriteSummary(opts.output, counts, static)
    if opts.report_top > 0:
        p | "RunReport" >> BuildRunReport(opts.output, summary=summary, pairs=pairs, groups=groups, docs=docs,
                                          scored=merge.scored, top=opts.report_top)
    return {"documents": docs, "vectors": vectors, "pairs": pairs, "dead_letter": dead}


def run(argv=None) -> "beam.runners.runner.PipelineResult":
    """Parses options, checks Elasticsearch before any heavy work, runs the job and waits for it."""
    options = PipelineOptions(argv)
    opts = options.view_as(DedupOptions)
    opts.validate_job()
    es = opts.es_config()
    if opts.vector_store == "elasticsearch":
        health = check_cluster(es)  # pre-flight: a wrong URL or credentials fail here, not after an hour
        _LOG.info("Elasticsearch %s is %s", es.safe_url, health.get("status"))
    if opts.recreate_index and opts.vector_store == "elasticsearch":
        client = es.client()
        try:
            client.indices.delete(index=es.physical_index, ignore_unavailable=True)
        finally:
            client.close()
    if opts.bq_output_dataset:  # re-running a run replaces its rows in BigQuery
        run_id = opts.run_id or default_run_id(opts)
        _LOG.info("deleted earlier rows of run %s: %s", run_id, delete_run_rows(opts.bq_output_dataset, run_id))
    removed = clear_outputs(opts.output)
    if removed:
        _LOG.info("removed %d files of an earlier run under %s", removed, opts.output)
    pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
    build_pipeline(pipeline, opts)
    result = pipeline.run()
    result.wait_until_finish()
    return result


def main(argv=None) -> int:
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
