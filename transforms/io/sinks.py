"""Output sinks: the tables (Parquet and JSON lines), dead letters (JSONL) and summary.json.

Every table goes into its own sub-directory of the output location (local or gs://) as
deterministic shards (WriteTable): the same rows give byte-identical files, so a re-run with the same
input and settings reproduces its tables exactly.
"""
from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

DUPLICATES_SCHEMA = pa.schema([
    pa.field("doc_a", pa.string(), nullable=False),
    pa.field("doc_b", pa.string(), nullable=False),
    pa.field("relation", pa.string()),
    pa.field("granularity", pa.string()),
    pa.field("cosine", pa.float64()),
    pa.field("jaccard", pa.float64()),
    pa.field("margin", pa.float64()),
    pa.field("aligned", pa.float64()),
    pa.field("small_edits", pa.float64()),
    pa.field("method", pa.string(), nullable=False),
    pa.field("rule", pa.string()),
    pa.field("matched_units", pa.int32()),
    pa.field("coverage_a", pa.float64()),
    pa.field("coverage_b", pa.float64()),
    pa.field("evidence", pa.string()),
    pa.field("group_id", pa.string()),
    pa.field("canonical_id", pa.string()),
    pa.field("model", pa.string()),
    pa.field("run_id", pa.string()),
])

GROUPS_SCHEMA = pa.schema([
    pa.field("group_id", pa.string(), nullable=False),
    pa.field("canonical_id", pa.string(), nullable=False),
    pa.field("size", pa.int32()),
    pa.field("members", pa.list_(pa.string())),
    pa.field("run_id", pa.string()),
])

# The catalogue's groups after this run (transforms/incremental/current.py): how each relates to the
# groups stored before it.
GROUPS_CURRENT_SCHEMA = pa.schema([
    *GROUPS_SCHEMA,
    pa.field("previous_ids", pa.list_(pa.string())),
    pa.field("change", pa.string()),
])

UNIT_MATCHES_SCHEMA = pa.schema([
    pa.field("unit_a", pa.string(), nullable=False),
    pa.field("unit_b", pa.string(), nullable=False),
    pa.field("doc_a", pa.string(), nullable=False),
    pa.field("doc_b", pa.string(), nullable=False),
    pa.field("unit_type", pa.string()),
    pa.field("a_start", pa.int64()),
    pa.field("a_end", pa.int64()),
    pa.field("b_start", pa.int64()),
    pa.field("b_end", pa.int64()),
    pa.field("cosine", pa.float64()),
    pa.field("jaccard", pa.float64()),
    pa.field("margin", pa.float64()),
    pa.field("method", pa.string()),
    pa.field("rule", pa.string()),
    pa.field("model", pa.string()),
    pa.field("run_id", pa.string()),
])

UNITS_SCHEMA = pa.schema([
    pa.field("unit_id", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("unit_type", pa.string(), nullable=False),
    pa.field("unit_index", pa.int32()),
    pa.field("start", pa.int64()),
    pa.field("end", pa.int64()),
    pa.field("content_hash", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("template", pa.bool_()),
    pa.field("text", pa.string()),
])

TEMPLATES_SCHEMA = pa.schema([
    pa.field("key", pa.string(), nullable=False),
    pa.field("documents", pa.int64()),
    pa.field("share", pa.float64()),
    pa.field("example_doc", pa.string()),
    pa.field("text", pa.string()),
])

DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("source", pa.string()),
    pa.field("line", pa.int64()),
    pa.field("record_id", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("payload", pa.string()),
])

OUTPUT_DIRS = ("duplicates", "dead_letter", "units", "unit_matches", "groups", "duplicates_current", "groups_current")


def join_path(base: str, *parts: str) -> str:
    return FileSystems.join(base.rstrip("/"), *parts)


def clear_outputs(output: str) -> int:
    """Deletes earlier files of this job's sinks under `output`, so a re-run replaces, never appends."""
    patterns = [join_path(output, d, "*") for d in OUTPUT_DIRS] + [join_path(output, "summary.json"), join_path(output, "report.html")]
    paths = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if paths:
        FileSystems.delete(paths)
    return len(paths)


TABLE_KEYS = {  # the columns that identify a row of each table: shard assignment and sort order
    "duplicates": ("doc_a", "doc_b"),
    "groups": ("group_id",),
    "duplicates_current": ("doc_a", "doc_b"),
    "groups_current": ("group_id",),
    "unit_matches": ("unit_a", "unit_b"),
    "units": ("doc_id", "unit_type", "unit_index"),
    "templates": ("key",),
    "dead_letter": ("stage", "reason", "source", "line", "record_id"),
}
FORMATS = ("parquet", "jsonl")


def _row_key(row: dict, key: tuple) -> str:
    return json.dumps([row.get(k) for k in key], ensure_ascii=False)


def _row_sort_key(row: dict, key: tuple) -> tuple:
    return (_row_key(row, key), json.dumps(row, sort_keys=True, ensure_ascii=False, default=str))


def shard_count(n_rows: int, rows_per_file: int) -> int:
    return max(1, -(-n_rows // max(1, rows_per_file)))


class _WriteShard(beam.DoFn):
    """(shard, [row]) -> one sorted file per format, written to a temporary name then renamed into
    place, so a retried bundle overwrites the same file and a half-written file is never visible."""

    def __init__(self, base, schema, key, formats):
        self.base, self.schema, self.key, self.formats = base, schema, key, formats

    def process(self, element, n_shards):
        import uuid

        import pyarrow.parquet as pq

        shard, rows = element
        rows = sorted(rows, key=lambda r: _row_sort_key(r, self.key))
        stem = f"part-{shard:05d}-of-{n_shards:05d}"
        for fmt in self.formats:
            final = join_path(self.base, f"{stem}.{fmt}")
            tmp = join_path(self.base, f".tmp-{uuid.uuid4().hex}-{stem}.{fmt}")
            with FileSystems.create(tmp) as handle:
                if fmt == "parquet":
                    pq.write_table(pa.Table.from_pylist(rows, self.schema), handle, compression="snappy")
                else:
                    for row in rows:
                        handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
            if FileSystems.exists(final):
                FileSystems.delete([final])
            FileSystems.rename([tmp], [final])
            yield final


class WriteTable(beam.PTransform):
    """Row dict -> <output>/<table>/part-SSSSS-of-NNNNN.{parquet,jsonl}, byte-identical for identical rows.

    Rows are projected onto `schema`, spread over ceil(rows / rows_per_file) shards by a hash of the
    table's key columns, and sorted inside each shard: no worker holds more than one shard, and the
    same rows give the same files whatever the runner's bundling. Output: written file paths."""

    def __init__(self, output: str, table: str, schema: pa.Schema, *, formats=FORMATS, rows_per_file: int = 50_000):
        super().__init__()
        unknown = set(formats) - set(FORMATS)
        if unknown or not formats:
            raise ValueError(f"output formats must be among {FORMATS}, got {list(formats)}")
        self.output, self.table, self.schema = output, table, schema
        self.formats, self.rows_per_file = tuple(formats), rows_per_file

    def expand(self, rows):
        import zlib

        names, key, per_file = self.schema.names, TABLE_KEYS[self.table], self.rows_per_file
        projected = rows | "Project" >> beam.Map(lambda r: {n: r.get(n) for n in names})
        n_shards = (projected | "CountRows" >> beam.combiners.Count.Globally()
                    | "Shards" >> beam.Map(shard_count, per_file))

        def assign(row, n):
            return zlib.crc32(_row_key(row, key).encode("utf-8")) % n, row

        return (projected
                | "AssignShard" >> beam.Map(assign, beam.pvalue.AsSingleton(n_shards))
                | "GroupShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.ParDo(_WriteShard(join_path(self.output, self.table), self.schema, key,
                                                         self.formats), beam.pvalue.AsSingleton(n_shards)))


class CountBy(beam.PTransform):
    """Elements -> singleton {key(element): count}."""

    def __init__(self, key):
        super().__init__()
        self.key = key

    def expand(self, pcoll):
        key = self.key
        return (pcoll | "Key" >> beam.Map(lambda e: (key(e), 1)) | "Sum" >> beam.CombinePerKey(sum)
                | "ToDict" >> beam.combiners.ToDict())


class ReconcileSources(beam.PTransform):
    """Per input source: records read (= documents + read dead letters), documents processed, dead
    letters of every stage, and whether read == processed + dead_lettered. Singleton dict."""

    def __init__(self, *, read, read_dead, processed, dead):
        """read: every Document read; read_dead: the reader's DeadLetters; processed: the Documents
        that reached the end; dead: the DeadLetter PCollections of every stage (read's included)."""
        super().__init__()
        self.read, self.read_dead, self.processed, self.dead = read, read_dead, processed, dead

    def expand(self, pbegin):
        def by_source(label, pcoll):
            return (pcoll | f"{label}Key" >> beam.Map(lambda e: (e.get("source") or "?", 1))
                    | f"{label}Sum" >> beam.CombinePerKey(sum))

        dead = self.dead | "AllDead" >> beam.Flatten()
        tables = {
            "records": (self.read, self.read_dead) | "AllRead" >> beam.Flatten(),
            "processed": self.processed,
            "dead_lettered": dead,
        }
        keyed = {name: by_source(name.title(), pc) for name, pc in tables.items()}

        def row(element):
            source, g = element
            r = {name: sum(g[name]) for name in tables}
            r["reconciled"] = r["records"] == r["processed"] + r["dead_lettered"]
            return source, r

        return (keyed | "JoinSources" >> beam.CoGroupByKey() | "Row" >> beam.Map(row)
                | "ToDict" >> beam.combiners.ToDict())


class WriteDeadLetters(beam.PTransform):
    """DeadLetter dict -> <output>/dead_letter/part-*.jsonl (deterministic shards, see WriteTable)."""

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, dead):
        return dead | "WriteJsonl" >> WriteTable(self.output, "dead_letter", DEAD_LETTER_SCHEMA, formats=("jsonl",))


class WriteSummary(beam.PTransform):
    """{name: singleton count PCollection} -> <output>/summary.json, written once after all counts."""

    def __init__(self, output: str, counts: dict, static: dict):
        super().__init__()
        self.output = output
        self.counts = counts
        self.static = static

    def expand(self, pbegin):
        path = join_path(self.output, "summary.json")
        static = self.static

        def write(_, **counts):
            summary = {**static, "counts": dict(sorted(counts.items()))}
            with FileSystems.create(path, mime_type="application/json") as handle:
                handle.write(json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
            return summary

        side = {name: beam.pvalue.AsSingleton(pc) for name, pc in self.counts.items()}
        return pbegin | "Once" >> beam.Create([None]) | "WriteSummaryJson" >> beam.Map(write, **side)
