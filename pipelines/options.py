"""Options of the dedup job (one PipelineOptions subclass; Beam's own options are not redeclared).

Required options are validated by `validate()` with a clear message instead of argparse's
`required=True`, which breaks every other pipeline in the process once this class is imported.
"""
from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.io.elasticsearch_store import INDEX_OPTION_TYPES
from transforms.signals.models import DEFAULT_MODEL
from transforms.io.ingest import FORMATS as INPUT_FORMATS
from transforms.matching.groups import CANONICAL_POLICIES
from transforms.text.units import UNIT_TYPES
from transforms.records import ConfigError


def _bool(value: str) -> bool:
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


class DedupOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("input and output")
        g.add_argument("--input", help="File pattern, local or gs:// (JSONL, CSV, Parquet, Avro, text or HTML)")
        g.add_argument("--input_format", default="auto", choices=INPUT_FORMATS + ("auto",),
                       help="Format of the input files (auto: by extension)")
        g.add_argument("--bq_table", default="", help="BigQuery table to read instead of files (project:dataset.table)")
        g.add_argument("--bq_query", default="", help="BigQuery standard-SQL query to read instead of files")
        g.add_argument("--output", help="Output directory, local or gs://: duplicates/, groups/, unit_matches/, units/, "
                            "dead_letter/, summary.json, report.html")
        g.add_argument("--output_formats", default="parquet,jsonl",
                       help="File formats of the output tables under --output (parquet, jsonl)")
        g.add_argument("--rows_per_file", type=int, default=50_000,
                       help="Rows per output file; tables are sharded and sorted deterministically, and one worker "
                            "holds one file's rows while writing it (the bound on its memory)")
        g.add_argument("--report_top", type=int, default=25,
                       help="Pairs shown side by side in report.html (0: no HTML report)")
        g.add_argument("--bq_output_dataset", default="",
                       help="Also load duplicates, groups and unit_matches into this BigQuery dataset "
                            "(project:dataset; day-partitioned by run_date, re-runs replace their rows)")
        g.add_argument("--run_date", default="", help="Partition date of this run's BigQuery rows (default: today, UTC)")
        g.add_argument("--id_field", default="id", help="Input field holding the document id")
        g.add_argument("--text_field", default="text", help="Input field holding the document text (plain or HTML)")
        g.add_argument("--title_field", default="title", help="Input field holding the title")
        g.add_argument("--url_field", default="url", help="Input field holding the URL")
        g.add_argument("--lang_field", default="lang", help="Input field holding the language (else detected)")
        g.add_argument("--published_at_field", default="published_at", help="Input field holding the publication date")
        g.add_argument("--extra_fields", default="", help="Comma-separated input fields passed through as metadata")
        g.add_argument("--max_chars", type=int, default=2_000_000,
                       help="Documents longer than this (raw characters) go to the dead letters")
        g.add_argument("--units", default="document,paragraph,sentence",
                       help="Units split from each document and written to units/ (document, paragraph, sentence)")
        g.add_argument("--match_units", default="document,paragraph",
                       help="Unit types matched against each other (a subset of --units); paragraph and "
                            "sentence matches are rolled up to document pairs")
        g.add_argument("--unit_cosine_threshold", type=float, default=0.9,
                       help="Cosine threshold for paragraph/sentence matches (stricter than documents')")
        g.add_argument("--unit_jaccard_threshold", type=float, default=0.5,
                       help="Jaccard threshold for paragraph/sentence matches")
        g.add_argument("--min_unit_chars", type=int, default=40,
                       help="Paragraph/sentence units shorter than this are counted and skipped")
        g.add_argument("--template_min_docs", type=int, default=10,
                       help="Template text: a paragraph whose normalised text occurs in at least this many distinct "
                            "documents (and --template_min_share of them) is the site's template (navigation, "
                            "footers, repeated notices): listed in templates/, never matched, left out of the "
                            "document-level text (0: no template detection)")
        g.add_argument("--template_min_share", type=float, default=0.0,
                       help="Template text: fewest documents, as a share of all distinct documents (0: the "
                            "absolute --template_min_docs alone; a share grows with the corpus and let a section's "
                            "notices on 10-50 of 2,500 pages pass as content)")
        g.add_argument("--frame_min_docs", type=int, default=9,
                       help="A paragraph whose matches reach units of at least this many other documents is a "
                            "template frame (one sentence pattern with each page's own words), and none of its "
                            "matches is passage reuse (0: off)")
        g.add_argument("--min_passage_chars", type=int, default=100,
                       help="Paragraphs/sentences shorter than this are units (units/) but are not matched as "
                            "passages: a shared one-line instruction or heading is not passage reuse")
        g.add_argument("--min_chars", type=int, default=20,
                       help="Documents shorter than this after cleaning go to the dead letters")
        g.add_argument("--run_id", default="", help="Run identifier recorded with every output row "
                                                    "(default: derived from input, model and thresholds)")
        g.add_argument("--progress_interval", type=float, default=10.0,
                       help="Seconds between two progress lines of one worker during reading, embedding and "
                            "kNN search (counters progress/* on every runner; 0: counters only)")
        g = parser.add_argument_group("embedding")
        g.add_argument("--model", default=DEFAULT_MODEL,
                       help="Packaged model name, local directory, gs:// directory or Hugging Face name")
        g.add_argument("--embed_batch_size", type=int, default=0,
                       help="model.encode batch size (0: 32 on CPU, 128 on CUDA, as measured)")
        g.add_argument("--embed_backend", default="auto", choices=("auto", "torch", "openvino"),
                       help="auto: OpenVINO on CPU for the models it supports (Transformer + mean/CLS pooling; "
                            "2-3.5x torch here, same vectors), else torch; chosen on each worker and recorded "
                            "in summary.json (embedded_by)")
        g.add_argument("--embed_precision", default="auto", choices=("fp32", "bf16", "auto"),
                       help="auto: bf16 where the CPU computes it natively (AVX512-BF16/AMX, detected on each "
                            "worker; ONEDNN_MAX_CPU_ISA is obeyed), else fp32; bf16 forces it (fp32 with a "
                            "warning where the CPU lacks it); fp32: never bf16")
        g.add_argument("--embed_distinct_texts", type=_bool, default=True,
                       help="Embed each distinct unit text once (content hash) and hand its vector to every "
                            "unit with that text: exact copies and repeated paragraphs cost one encode")
        g.add_argument("--embed_min_batch", type=int, default=1024,
                       help="Texts per model.encode call: units are dealt into groups of about this many by a "
                            "stable hash, each group one call (length-sorted inside), so vectors are the same on "
                            "every runner")
        g.add_argument("--embed_max_batch", type=int, default=4096,
                       help="Most texts handed to one model.encode call (a larger group is split)")
        g.add_argument("--long_texts", default="chunk", choices=("chunk", "truncate"),
                       help="Texts longer than the model's window: chunk and mean-pool the windows, or "
                            "truncate to the first window (both counted: embed/long_texts)")
        g.add_argument("--torch_threads", type=int, default=0, help="torch threads per process (0: torch default)")
        g.add_argument("--device", default="", help="torch device (default: cuda if available, else cpu)")
        g = parser.add_argument_group("elasticsearch")
        g.add_argument("--vector_store", default="elasticsearch", choices=("elasticsearch", "memory"),
                       help="Where vectors are indexed and searched: Elasticsearch, or exact in-memory search "
                            "(small corpora, no server)")
        g.add_argument("--es_url", default="http://127.0.0.1:9200", help="Elasticsearch URL")
        g.add_argument("--es_cloud_id", default="", help="Elastic Cloud id (instead of --es_url)")
        g.add_argument("--es_index", default="dedup-documents",
                       help="Alias of the vector index (a versioned physical index per model/settings)")
        g.add_argument("--es_index_options", default="hnsw", choices=INDEX_OPTION_TYPES,
                       help="dense_vector index_options type")
        g.add_argument("--es_api_key_env", default="", help="Name of the env var holding an API key")
        g.add_argument("--es_api_key_secret", default="",
                       help="Secret Manager version holding an API key (projects/P/secrets/S/versions/V)")
        g.add_argument("--es_password_secret", default="", help="Secret Manager version holding the password")
        g.add_argument("--es_username", default="", help="Basic-auth user name")
        g.add_argument("--es_password_env", default="", help="Name of the env var holding the basic-auth password")
        g.add_argument("--es_ca_certs", default="", help="CA certificate file for TLS")
        g.add_argument("--es_verify_certs", type=_bool, default=True, help="Verify TLS certificates (default true)")
        g.add_argument("--es_batch_size", type=int, default=500,
                       help="Documents per bulk request (also capped at 8 MB per request)")
        g.add_argument("--recreate_index", type=_bool, default=False,
                       help="Rebuild the index from scratch (the same as --mode full)")
        g.add_argument("--es_merge_segments", type=int, default=1,
                       help="Full runs: force-merge the freshly loaded index to at most this many segments "
                            "before the kNN searches (0: no merge). Every segment has its own HNSW graph and "
                            "each query searches all of them: measured on 26,200 vectors in 8 segments, one "
                            "merge (14.5 s) halved the kNN time (56 -> 29 s); segments grow with the corpus, "
                            "so unmerged kNN time grows with its square")
        g.add_argument("--es_merge_timeout_s", type=float, default=1800.0,
                       help="How long a full run waits for that merge; past it the job searches the unmerged "
                            "index (same results, slower queries) and warns. Elasticsearch starts no merge "
                            "while its disk is over 95%% full (indices.merge.disk.watermark.high)")
        g.add_argument("--mode", default="full", choices=("full", "incremental"),
                       help="full: every unit is processed into a new index, the alias is swapped at the end; "
                            "incremental: only new and changed units are processed, matched against the whole index")
        g.add_argument("--lease_ttl", type=float, default=120.0,
                       help="Seconds a run's lease on the alias lives without a heartbeat (the launcher renews it "
                            "every ttl/4 while the job runs; a crashed run's lease expires after this long)")
        g.add_argument("--wait_for_lease", type=float, default=0.0,
                       help="Seconds to wait when another run holds the alias's lease (0: fail at once, naming it)")
        g.add_argument("--on_deleted", default="keep", choices=("keep", "delete"),
                       help="Incremental runs on a full snapshot: delete indexed documents absent from the input")
        g = parser.add_argument_group("duplicate search")
        g.add_argument("--cosine_threshold", type=float, default=0.85,
                       help="Document pairs with cosine at or above this (and --cosine_margin) are duplicates on "
                            "meaning alone; see --combined_jaccard for cosine backed by shared text")
        g.add_argument("--cosine_margin", type=float, default=1.5,
                       help="Document pairs decided by cosine alone also need margin >= this: cosine / the mean "
                            "cosine of the two documents' --knn_k nearest neighbours (same-site pages on one topic "
                            "all reach cosine 0.85-0.93 with margins up to 1.46; a rewrite stands out from them). "
                            "0: cosine alone decides")
        g.add_argument("--unit_cosine_margin", type=float, default=1.2,
                       help="The same margin for paragraph/sentence pairs decided by cosine")
        g.add_argument("--knn_k", type=int, default=10, help="Neighbours searched per document")
        g.add_argument("--knn_num_candidates", type=int, default=100,
                       help="HNSW candidates per shard (paragraph/sentence searches; documents too with "
                            "--document_search approximate); raised to 3 x --knn_k + 1 where smaller, since "
                            "each search takes 3 x --knn_k hits to rank ties at the k-th place by unit id")
        g.add_argument("--document_search", default="exact", choices=("exact", "approximate"),
                       help="How each document finds its --knn_k nearest documents: exact (every document "
                            "compared, the same neighbours on every run and runner; cost grows with documents "
                            "squared) or approximate (HNSW, like passages; for corpora of millions of documents)")
        g.add_argument("--knn_exclude_same_document", type=_bool, default=True,
                       help="Do not pair units of the same document")
        g.add_argument("--combined_jaccard", type=float, default=0.45,
                       help="Document pairs with Jaccard >= this AND cosine >= --combined_cosine are duplicates: "
                            "both signals agreeing at lower thresholds than either alone (0: no such clause)")
        g.add_argument("--combined_cosine", type=float, default=0.85,
                       help="Cosine of the combined clause (see --combined_jaccard; no margin needed)")
        g.add_argument("--aligned_threshold", type=float, default=0.65,
                       help="Document pairs whose word sequences align at least this much (2*LCS / total words) "
                            "AND with --aligned_small_edits AND cosine >= --aligned_cosine are duplicates: "
                            "heavily edited copies keep their word order (0: no such clause)")
        g.add_argument("--aligned_small_edits", type=float, default=0.85,
                       help="Share of either document's words aligned or in an unaligned run of <= 3 words the "
                            "alignment clause needs (scattered word edits, not a different passage)")
        g.add_argument("--aligned_cosine", type=float, default=0.55,
                       help="Cosine the alignment clause needs (also the document kNN search floor when lower "
                            "than the other clauses')")
        g.add_argument("--containment_threshold", type=float, default=0.25,
                       help="Document pairs where at least this share of the smaller one's shingles occur in the "
                            "other (at least --containment_min_shingles of them), AND cosine >= "
                            "--containment_cosine, are passage reuse (relation 'passage', "
                            "coverage = each side's share): a passage copied whole into a longer page, whose "
                            "Jaccard falls with the page's length. Never a whole-document duplicate, so it chains "
                            "no group (0: no such clause)")
        g.add_argument("--containment_cosine", type=float, default=0.55,
                       help="Cosine the containment clause needs")
        g.add_argument("--containment_min_shingles", type=int, default=20,
                       help="Shingles the two documents of the containment clause must share (about the "
                            "copied passage's length in words): a navigation line in a short page is no passage"),
        g.add_argument("--common_source_cosine", type=float, default=0.55,
                       help="Two documents that are each a whole-document duplicate of a third, and whose own "
                            "cosine is at least this, are reported as a duplicate pair (rule 'common source "
                            "<id>'): differently edited copies of one page can share too little to match "
                            "directly (full runs; 0: no such pairs)")
        g.add_argument("--rule", default="",
                       help="Decision rule for document pairs, e.g. 'jaccard >= 0.8 or (cosine >= 0.92 and "
                            "jaccard >= 0.2)' (default: jaccard >= --jaccard_threshold or cosine >= --cosine_threshold with margin, or "
                            "the combined clause)")
        g.add_argument("--unit_rule", default="", help="Decision rule for paragraph/sentence pairs (same syntax)")
        g.add_argument("--duplicate_coverage", type=float, default=0.8,
                       help="A pair whose matched passages cover at least this share of both documents' "
                            "(non-template) text is a whole-document duplicate even when the documents as a "
                            "whole did not match; below it, passage reuse (relation in duplicates/)")
        g.add_argument("--signals", default="knn,minhash",
                       help="Comma-separated duplicate searches to run: knn (semantic), minhash (lexical)")
        g = parser.add_argument_group("groups")
        g.add_argument("--canonical_policy", default="earliest,longest,smallest_id",
                       help="Ordered rules choosing each group's canonical document: earliest (published_at), "
                            "longest, shortest, preferred_url, smallest_id (always the final tie-break)")
        g.add_argument("--preferred_url", default="", help="Regex of preferred URLs for the preferred_url rule")
        g.add_argument("--group_rounds", type=int, default=24,
                       help="Large/small-star rounds of the connected components (log-scale in group size)")
        g = parser.add_argument_group("minhash lsh")
        g.add_argument("--jaccard_threshold", type=float, default=0.6,
                       help="Document pairs with exact shingle Jaccard at or above this are duplicates on shared "
                            "text alone (LSH is banded for the lowest Jaccard a rule accepts)")
        g.add_argument("--num_perm", type=int, default=128, help="MinHash permutations")
        g.add_argument("--minhash_seed", type=int, default=1, help="MinHash seed (datasketch-compatible)")
        g.add_argument("--shingle_kind", default="word", choices=("word", "char"), help="Shingle tokens")
        g.add_argument("--shingle_n", type=int, default=3, help="Tokens per shingle")
        g.add_argument("--remove_accents", type=_bool, default=False,
                       help="Ignore accents when shingling (the embedding text is never changed)")
        g.add_argument("--lsh_target_recall", type=float, default=0.97,
                       help="Candidate probability required at J = jaccard_threshold when choosing bands")
        g.add_argument("--lsh_max_bucket", type=int, default=200,
                       help="Band buckets larger than this are chained instead of fully paired")
        g.add_argument("--lsh_window", type=int, default=3, help="Chain window inside oversized buckets")
        g.add_argument("--lsh_prefilter_margin", type=float, default=0.15,
                       help="Skip exact verification when the signature estimate is below threshold - margin "
                            "(1 disables)")

    def validate_job(self) -> None:
        """ConfigError with a clear message for a missing or inconsistent option."""
        from pipelines.config import JobConfig

        if not self.output:
            raise ConfigError("missing required option(s): --output")
        if sum(bool(x) for x in (self.input, self.bq_table, self.bq_query)) != 1:
            raise ConfigError("give exactly one input: --input (files), --bq_table or --bq_query")
        cfg = JobConfig.from_options(self)
        if set(cfg.units) - set(UNIT_TYPES) or not cfg.units:
            raise ConfigError(f"--units takes {', '.join(UNIT_TYPES)}, got {self.units!r}")
        cfg.rules()
        if not cfg.output_formats or set(cfg.output_formats) - {"parquet", "jsonl"}:
            raise ConfigError(f"--output_formats takes parquet and/or jsonl, got {self.output_formats!r}")
        if self.rows_per_file < 1:
            raise ConfigError(f"--rows_per_file must be >= 1, got {self.rows_per_file}")
        if self.mode == "incremental" and self.vector_store != "elasticsearch":
            raise ConfigError("--mode incremental keeps its state in Elasticsearch: it needs --vector_store elasticsearch")
        if self.on_deleted == "delete" and self.mode != "incremental":
            raise ConfigError("--on_deleted delete applies to --mode incremental (a full run rebuilds from its input)")
        if self.frame_min_docs < 0:
            raise ConfigError(f"--frame_min_docs must be >= 0, got {self.frame_min_docs}")
        if self.template_min_docs < 0 or not 0.0 <= self.template_min_share <= 1.0:
            raise ConfigError("--template_min_docs must be >= 0 and --template_min_share in [0, 1]")
        if self.min_passage_chars < 0:
            raise ConfigError(f"--min_passage_chars must be >= 0, got {self.min_passage_chars}")
        if not (0.0 <= self.combined_jaccard < 1.0 and 0.0 <= self.combined_cosine <= 1.0):
            raise ConfigError("--combined_jaccard must be in [0, 1) and --combined_cosine in [0, 1]")
        if not all(0.0 <= x <= 1.0 for x in (self.aligned_threshold, self.aligned_small_edits, self.aligned_cosine)):
            raise ConfigError("--aligned_threshold, --aligned_small_edits and --aligned_cosine must be in [0, 1], got "
                              f"{self.aligned_threshold}, {self.aligned_small_edits}, {self.aligned_cosine}")
        if self.containment_min_shingles < 0:
            raise ConfigError(f"--containment_min_shingles must be >= 0, got {self.containment_min_shingles}")
        if not (0.0 <= self.containment_threshold <= 1.0 and 0.0 <= self.containment_cosine <= 1.0):
            raise ConfigError("--containment_threshold and --containment_cosine must be in [0, 1], got "
                              f"{self.containment_threshold}, {self.containment_cosine}")
        if not 0.0 <= self.common_source_cosine <= 1.0:
            raise ConfigError(f"--common_source_cosine must be in [0, 1], got {self.common_source_cosine}")
        if self.cosine_margin < 0 or self.unit_cosine_margin < 0:
            raise ConfigError(f"--cosine_margin and --unit_cosine_margin must be >= 0, got {self.cosine_margin}, "
                              f"{self.unit_cosine_margin}")
        if not 0.0 < self.duplicate_coverage <= 1.0:
            raise ConfigError(f"--duplicate_coverage must be in (0, 1], got {self.duplicate_coverage}")
        if self.progress_interval < 0:
            raise ConfigError(f"--progress_interval must be >= 0, got {self.progress_interval}")
        if self.lease_ttl <= 0 or self.wait_for_lease < 0:
            raise ConfigError("--lease_ttl must be > 0 and --wait_for_lease >= 0")
        if self.es_merge_timeout_s <= 0:
            raise ConfigError(f"--es_merge_timeout_s must be > 0, got {self.es_merge_timeout_s}")
        if self.es_batch_size < 1:
            raise ConfigError(f"--es_batch_size must be >= 1, got {self.es_batch_size}")
        bad_rules = set(cfg.canonical_policy) - set(CANONICAL_POLICIES + ("preferred_url",))
        if bad_rules:
            raise ConfigError(f"--canonical_policy: unknown rule(s) {sorted(bad_rules)}")
        if not cfg.match_units or not set(cfg.match_units) <= set(cfg.units):
            raise ConfigError(f"--match_units must be a non-empty subset of --units, got {self.match_units!r}")
        if not 0.0 < self.cosine_threshold <= 1.0:
            raise ConfigError(f"--cosine_threshold must be in (0, 1], got {self.cosine_threshold}")
        if self.knn_k < 1 or self.knn_num_candidates < self.knn_k:
            raise ConfigError("--knn_k must be >= 1 and --knn_num_candidates >= --knn_k")
        if not 0.0 < self.jaccard_threshold < 1.0:
            raise ConfigError(f"--jaccard_threshold must be in (0, 1), got {self.jaccard_threshold}")
        if set(cfg.signals) - {"knn", "minhash"} or not cfg.signals:
            raise ConfigError(f"--signals takes knn and/or minhash, got {self.signals!r}")
        try:
            cfg.minhash_params()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        cfg.es_config()


class FlinkBatchOptions(PipelineOptions):
    """Options of Beam's Flink runner that the Python SDK does not declare; sent to the job server
    with the others (a Python-side declaration is what lets the job accept them)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--execution_mode_for_batch", default=None,
            choices=("PIPELINED", "PIPELINED_FORCED", "BATCH", "BATCH_FORCED"),
            help="Flink's data exchange mode for a batch job (Flink runner only; default PIPELINED). "
                 "BATCH_FORCED writes every exchange out before it is read, so a job of more partitions "
                 "(--parallelism) than task slots runs a few at a time: Beam's Flink runner makes a "
                 "partition one bundle, and a bundle's output is held between the SDK worker and the "
                 "TaskManager until the bundle ends (README, Flink)")


# --- the command line: help, refusal of unknown arguments, input files -------------------------------

class _HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its meaning (empty defaults are left out)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, "", argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def job_help() -> str:
    """The job's own options by group, with defaults; Beam's options behind a pointer."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.dedup", formatter_class=_HelpFormatter, add_help=False,
        usage="%(prog)s --input PATTERN --output DIR [options] [Beam options]",
        description="Finds near-duplicate documents and reused passages in a corpus (see README.md).",
        epilog="Beam's own options (--runner, --direct_running_mode, --direct_num_workers, Dataflow's "
               "--project/--region/--temp_location, ...) are accepted too: `python -m pipelines.dedup "
               "--help_beam` lists them. Quote file patterns (--input 'data/*.jsonl'): an argument the job "
               "does not know is an error.")
    DedupOptions._add_argparse_args(parser)
    return parser.format_help()


def beam_help() -> str:
    """Beam's own pipeline options (every PipelineOptions class but the job's), one group per class."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.dedup", formatter_class=_HelpFormatter,
                                     add_help=False, usage="%(prog)s [job options] [Beam options]")
    for cls in _option_classes():
        if cls is DedupOptions:
            continue
        group = parser.add_argument_group(cls.__name__)
        # Beam's classes add arguments to the parser they get; a group takes the same calls.
        group.add_value_provider_argument = group.add_argument
        cls._add_argparse_args(group)
    return parser.format_help()


def _option_classes() -> list:
    """Every PipelineOptions class Beam would parse with (its own rule: direct subclasses, last wins)."""
    return list({str(cls): cls for cls in PipelineOptions.__subclasses__()}.values())


def unknown_arguments(argv: list[str]) -> list[str]:
    """The arguments no pipeline options class understands (Beam itself would only log and drop them)."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False, add_help=False)
    for cls in _option_classes():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(argv)
    return unknown


def check_arguments(argv: list[str]) -> None:
    """Raises ConfigError naming every argument the job and Beam do not know."""
    unknown = unknown_arguments(argv)
    if not unknown:
        return
    hint = ""
    if any(not a.startswith("-") for a in unknown):
        hint = " (a glob the shell expanded? quote file patterns: --input 'data/*.jsonl')"
    raise ConfigError(f"unrecognised argument(s): {' '.join(unknown)}{hint}; "
                      "`python -m pipelines.dedup --help` lists the options")


def count_input_files(pattern: str) -> dict:
    """{pattern: number of files it matches}; ConfigError when it matches none (nothing would be read)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # Beam raises BeamIOError (or the filesystem's own error) for a bad pattern
        raise ConfigError(f"--input {pattern!r}: cannot list files ({type(exc).__name__}: {exc})") from None
    if not matched:
        raise ConfigError(f"--input {pattern!r} matches no file")
    return {pattern: len(matched)}
