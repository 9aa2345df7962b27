"""Reading documents from files (JSONL, CSV, Parquet, Avro, plain text, HTML; local or gs://) or
BigQuery (table or standard-SQL query) into Document dicts, with dead letters.

    read = p | ReadCorpus(SourceConfig(pattern="gs://bucket/docs/*.parquet", fmt="parquet"))
    docs, dead = read.documents, read.dead_letter

Each input record becomes exactly one Document or one DeadLetter (a file that cannot be opened at
all counts as one record), so `read == documents + dead_letter` per source. Field names are mapped
by `FieldMap`; fields listed in `FieldMap.extra` are passed through under `meta`. Inputs whose schema
has no id field (text and HTML files, CSV/Parquet/Avro files without the id column) get a stable id
from their location (file path, plus row number); a record of a schema with ids that lacks one is a
`missing_id` dead letter.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
from typing import Iterator, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from transforms.records import DEAD_LETTER_TAG, dead_letter

FORMATS = ("jsonl", "csv", "parquet", "avro", "text", "html")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
              ".avro": "avro", ".txt": "text", ".text": "text", ".md": "text", ".html": "html", ".htm": "html"}
OPTIONAL_FIELDS = ("title", "url", "lang", "published_at")


@dataclasses.dataclass(frozen=True)
class FieldMap:
    """Input field names of the document fields; `extra` fields are kept under `meta`."""

    id: str = "id"
    text: str = "text"
    title: str = "title"
    url: str = "url"
    lang: str = "lang"
    published_at: str = "published_at"
    extra: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """One input: a file pattern with a format (or 'auto' by extension), or a BigQuery table/query."""

    pattern: str = ""
    fmt: str = "auto"
    bq_table: str = ""
    bq_query: str = ""
    fields: FieldMap = FieldMap()
    max_chars: int = 2_000_000
    csv_delimiter: str = ","

    def __post_init__(self):
        if sum(bool(x) for x in (self.pattern, self.bq_table, self.bq_query)) != 1:
            raise ValueError("give exactly one of: a file pattern, a BigQuery table, a BigQuery query")
        if self.fmt not in FORMATS + ("auto",):
            raise ValueError(f"input format must be one of {FORMATS + ('auto',)}, got {self.fmt!r}")


def stable_id(path: str, row: Optional[int] = None) -> str:
    """Id for a record without one: a hash of its file path (and row), the same on every run."""
    key = path if row is None else f"{path}#{row}"
    return "doc-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    ext = os.path.splitext(path.lower())[1]
    if ext not in EXTENSIONS:
        raise ValueError(f"cannot tell the format of {path} from its extension; set the input format")
    return EXTENSIONS[ext]


def to_document(record: dict, fields: FieldMap, *, source: str, line: Optional[int], max_chars: int,
                default_id: Optional[str] = None, payload=None) -> tuple[Optional[dict], Optional[dict]]:
    """A raw record (dict) -> (Document, None) or (None, DeadLetter) with the reason."""
    def bad(reason: str, detail: str = "", record_id=None):
        return None, dead_letter("read", reason, source=source, line=line, record_id=record_id, detail=detail,
                                 payload=payload if payload is not None else record)

    doc_id = record.get(fields.id) if default_id is None else default_id
    if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
        return bad("missing_id", f"field '{fields.id}' is absent or empty")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        return bad("invalid_id", f"field '{fields.id}' has type {type(doc_id).__name__}")
    doc_id = str(doc_id).strip()
    text = record.get(fields.text)
    if text is None:
        return bad("missing_text", f"field '{fields.text}' is absent or null", doc_id)
    if not isinstance(text, str):
        return bad("invalid_text", f"field '{fields.text}' has type {type(text).__name__}", doc_id)
    if "\x00" in text:
        return bad("invalid_text", "text contains NUL bytes (binary or mis-decoded input)", doc_id)
    if len(text) > max_chars:
        return bad("oversize", f"{len(text)} characters > limit {max_chars}", doc_id)
    doc = {"id": doc_id, "text": text, "source": source, "line": line}
    for name in OPTIONAL_FIELDS:
        value = record.get(getattr(fields, name))
        doc[name] = None if value is None else str(value)
    if fields.extra:
        doc["meta"] = {k: (None if record.get(k) is None else str(record.get(k))) for k in fields.extra}
    return doc, None


class _ReadFileRecords(beam.DoFn):
    """ReadableFile -> Document, DeadLetter on `dead_letter`. Streams each file; never fails on one."""

    def __init__(self, config: SourceConfig):
        self.config = config
        self.read = Metrics.counter("ingest", "records_read")
        self.ok = Metrics.counter("ingest", "documents")
        self.bad = Metrics.counter("ingest", "dead_letter")

    def process(self, readable_file):
        path = readable_file.metadata.path
        try:
            fmt = format_of(path, self.config.fmt)
            records = getattr(self, f"_{fmt}")(readable_file, path)
            for out in records:
                self.read.inc()
                if isinstance(out, beam.pvalue.TaggedOutput):
                    self.bad.inc()
                else:
                    self.ok.inc()
                yield out
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a dead letter, not a failed job
            self.read.inc()
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                "read", "unreadable_file", source=path, detail=f"{type(exc).__name__}: {exc}"))

    def _emit(self, record, path, line, default_id=None, payload=None):
        doc, err = to_document(record, self.config.fields, source=path, line=line, max_chars=self.config.max_chars,
                               default_id=default_id, payload=payload)
        return beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, err) if err else doc

    def _jsonl(self, readable_file, path) -> Iterator:
        with readable_file.open() as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue  # blank lines are not records
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "invalid_utf8", source=path, line=line_no, detail=str(exc),
                        payload=raw.decode("utf-8", errors="replace")))
                    continue
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "invalid_json", source=path, line=line_no, detail=str(exc)[:500], payload=line))
                    continue
                if not isinstance(rec, dict):
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "not_an_object", source=path, line=line_no,
                        detail=f"top-level JSON value is {type(rec).__name__}", payload=line))
                    continue
                yield self._emit(rec, path, line_no, payload=line)

    def _csv(self, readable_file, path) -> Iterator:
        with readable_file.open() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
            reader = csv.reader(text, delimiter=self.config.csv_delimiter)
            try:
                header = next(reader)
            except StopIteration:
                return
            row_no = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:  # the rest of the file is not readable as UTF-8
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "invalid_utf8", source=path, line=row_no + 1, detail=str(exc)))
                    return
                except csv.Error as exc:
                    row_no += 1
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "malformed_csv_row", source=path, line=row_no, detail=str(exc)))
                    continue
                row_no += 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "malformed_csv_row", source=path, line=row_no,
                        detail=f"{len(row)} cells, header has {len(header)}", payload=",".join(row)))
                    continue
                yield self._emit(dict(zip(header, row)), path, row_no,
                                 default_id=None if self.config.fields.id in header else stable_id(path, row_no))

    def _parquet(self, readable_file, path) -> Iterator:
        import pyarrow.parquet as pq

        with readable_file.open() as handle:
            parquet = pq.ParquetFile(handle)
            has_id = self.config.fields.id in parquet.schema_arrow.names
            row_no = 0
            for batch in parquet.iter_batches(batch_size=1024):
                for rec in batch.to_pylist():
                    row_no += 1
                    yield self._emit(rec, path, row_no, default_id=None if has_id else stable_id(path, row_no))

    def _avro(self, readable_file, path) -> Iterator:
        import fastavro

        with readable_file.open() as handle:
            reader = fastavro.reader(handle)
            has_id = self.config.fields.id in {f["name"] for f in reader.writer_schema.get("fields", [])}
            for row_no, rec in enumerate(reader, start=1):
                yield self._emit(rec, path, row_no, default_id=None if has_id else stable_id(path, row_no))

    def _whole_file(self, readable_file, path) -> Iterator:
        raw = readable_file.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                "read", "invalid_utf8", source=path, record_id=stable_id(path), detail=str(exc)))
            return
        title = os.path.splitext(os.path.basename(path))[0]
        fields = self.config.fields
        yield self._emit({fields.id: stable_id(path), fields.text: text, fields.title: title, fields.url: path},
                         path, None, payload=text)

    _text = _html = _whole_file


class _BigQueryRecords(beam.DoFn):
    """BigQuery row dict -> Document or DeadLetter (source `bq:<table or query>`)."""

    def __init__(self, config: SourceConfig, source: str):
        self.config = config
        self.source = source

    def process(self, row):
        doc, err = to_document(dict(row), self.config.fields, source=self.source, line=None,
                               max_chars=self.config.max_chars)
        if err:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, err)
        else:
            yield doc


def table_fields(table_spec: str, wanted: list[str]) -> Optional[list[str]]:
    """The mapped fields that exist in the BigQuery table (a read may only select existing columns);
    None (read all) if the schema cannot be fetched at graph construction."""
    from apache_beam.io.gcp import bigquery_tools

    try:
        ref = bigquery_tools.parse_table_reference(table_spec)
        table = bigquery_tools.BigQueryWrapper().get_table(ref.projectId, ref.datasetId, ref.tableId)
        existing = {f.name for f in table.schema.fields}
    except Exception as exc:  # noqa: BLE001 - permissions or network at launch: let the read fetch everything
        logging.getLogger(__name__).warning(
            "could not read the schema of %s (%s): reading all its columns", table_spec, type(exc).__name__)
        return None
    return [f for f in dict.fromkeys(wanted) if f in existing] or None


class ReadCorpus(beam.PTransform):
    """PBegin -> tagged PCollections `documents` (Document dicts) and `dead_letter` (DeadLetter dicts)."""

    def __init__(self, config: SourceConfig):
        super().__init__()
        self.config = config

    def expand(self, pbegin):
        c = self.config
        if c.pattern:
            return (pbegin
                    | "MatchFiles" >> fileio.MatchFiles(c.pattern)
                    | "ReadMatches" >> fileio.ReadMatches()
                    | "Reshuffle" >> beam.Reshuffle()
                    | "ParseRecords" >> beam.ParDo(_ReadFileRecords(c)).with_outputs(DEAD_LETTER_TAG, main="documents"))
        f = c.fields
        fields = [x for x in (f.id, f.text, f.title, f.url, f.lang, f.published_at, *f.extra) if x]
        if c.bq_table:
            rows = pbegin | "ReadBigQueryTable" >> beam.io.ReadFromBigQuery(
                table=c.bq_table, method=beam.io.ReadFromBigQuery.Method.DIRECT_READ,
                selected_fields=table_fields(c.bq_table, fields))
            source = f"bq:{c.bq_table}"
        else:
            rows = pbegin | "ReadBigQueryQuery" >> beam.io.ReadFromBigQuery(
                query=c.bq_query, use_standard_sql=True, method=beam.io.ReadFromBigQuery.Method.DIRECT_READ)
            source = "bq:query"
        return rows | "ParseRows" >> beam.ParDo(_BigQueryRecords(c, source)).with_outputs(
            DEAD_LETTER_TAG, main="documents")


class DropDuplicateIds(beam.PTransform):
    """Document -> Document, one per id: the first by (source, line) is kept, the others become
    dead letters `duplicate_id` (with whether their text differs). Deterministic on every runner."""

    def expand(self, docs):
        dup = Metrics.counter("ingest", "duplicate_id")

        def pick(element):
            doc_id, group = element
            group = sorted(group, key=lambda d: (d.get("source") or "", d.get("line") or 0, d["text"]))
            keep = group[0]
            yield keep
            for other in group[1:]:
                dup.inc()
                same = "same text" if other["text"] == keep["text"] else "different text"
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                    "read", "duplicate_id", source=other.get("source"), line=other.get("line"), record_id=doc_id,
                    detail=f"id already used by {keep.get('source')}:{keep.get('line')} ({same})",
                    payload=other["text"]))

        return (docs
                | "KeyById" >> beam.Map(lambda d: (d["id"], d))
                | "GroupById" >> beam.GroupByKey()
                | "KeepFirst" >> beam.FlatMap(pick).with_outputs(DEAD_LETTER_TAG, main="documents"))
