"""Output sinks: the duplicates table (Parquet), dead letters (JSONL) and summary.json.

Every sink writes into its own sub-directory of the output location (local or gs://); sinks that
share a file-name stem delete each other's files in Beam's finalisation.
"""
from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

DUPLICATES_SCHEMA = pa.schema([
    pa.field("doc_a", pa.string(), nullable=False),
    pa.field("doc_b", pa.string(), nullable=False),
    pa.field("granularity", pa.string()),
    pa.field("cosine", pa.float64()),
    pa.field("jaccard", pa.float64()),
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
    pa.field("text", pa.string()),
])

OUTPUT_DIRS = ("duplicates", "dead_letter", "units", "unit_matches", "groups")


def join_path(base: str, *parts: str) -> str:
    return FileSystems.join(base.rstrip("/"), *parts)


def clear_outputs(output: str) -> int:
    """Deletes earlier files of this job's sinks under `output`, so a re-run replaces, never appends."""
    patterns = [join_path(output, d, "*") for d in OUTPUT_DIRS] + [join_path(output, "summary.json")]
    paths = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if paths:
        FileSystems.delete(paths)
    return len(paths)


class WriteDuplicates(beam.PTransform):
    """Row dict -> Parquet files under <output>/<table>/ (duplicates: document pairs; unit_matches)."""

    def __init__(self, output: str, table: str = "duplicates", schema: pa.Schema = DUPLICATES_SCHEMA):
        super().__init__()
        self.output = output
        self.table = table
        self.schema = schema

    def expand(self, pairs):
        names = self.schema.names
        return (pairs
                | "Project" >> beam.Map(lambda p: {n: p.get(n) for n in names})
                | "WriteParquet" >> beam.io.WriteToParquet(
                    join_path(self.output, self.table, "part"), self.schema, file_name_suffix=".parquet"))


class WriteUnits(beam.PTransform):
    """Unit dict -> Parquet files under <output>/units/ (provenance: doc, type, index, offsets, hash)."""

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, units):
        names = UNITS_SCHEMA.names
        return (units
                | "Project" >> beam.Map(lambda u: {n: u.get(n) for n in names})
                | "WriteParquet" >> beam.io.WriteToParquet(
                    join_path(self.output, "units", "part"), UNITS_SCHEMA, file_name_suffix=".parquet"))


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

    def __init__(self, *, read, processed, dead):
        super().__init__()
        self.read, self.processed, self.dead = read, processed, dead

    def expand(self, pbegin):
        def by_source(label, pcoll):
            return (pcoll | f"{label}Key" >> beam.Map(lambda e: (e.get("source") or "?", 1))
                    | f"{label}Sum" >> beam.CombinePerKey(sum))

        dead = self.dead | "AllDead" >> beam.Flatten()
        tables = {
            "records": (self.read.documents, self.read.dead_letter) | "AllRead" >> beam.Flatten(),
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
    """DeadLetter dict -> JSON lines under <output>/dead_letter/."""

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, dead):
        return (dead
                | "ToJson" >> beam.Map(lambda r: json.dumps(r, ensure_ascii=False, sort_keys=True))
                | "WriteJsonl" >> beam.io.WriteToText(join_path(self.output, "dead_letter", "part"),
                                                      file_name_suffix=".jsonl"))


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
