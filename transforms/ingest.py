"""Reading documents: JSONL files (local or gs://) into Document dicts, with dead letters.

    lines = p | ReadDocuments("gs://bucket/docs/*.jsonl")
    docs, dead = lines.documents, lines.dead_letter

Each input line becomes exactly one Document or one DeadLetter, so counts reconcile:
read == documents + dead_letter.
"""
from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from transforms.records import DEAD_LETTER_TAG, dead_letter

OPTIONAL_FIELDS = ("title", "url", "lang", "published_at")


def parse_json_line(line: str, source: str, line_no: int, *, id_field: str = "id",
                    text_field: str = "text") -> tuple[dict | None, dict | None]:
    """Parses one JSONL line into (document, None) or (None, dead_letter)."""
    def bad(reason: str, detail: str = "", record_id=None):
        return None, dead_letter("read", reason, source=source, line=line_no, record_id=record_id,
                                 detail=detail, payload=line)

    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return bad("invalid_json", str(exc))
    if not isinstance(rec, dict):
        return bad("not_an_object", f"top-level JSON value is {type(rec).__name__}")
    doc_id = rec.get(id_field)
    if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
        return bad("missing_id", f"field '{id_field}' is absent or empty")
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        return bad("invalid_id", f"field '{id_field}' has type {type(doc_id).__name__}")
    doc_id = str(doc_id).strip()
    text = rec.get(text_field)
    if text is None:
        return bad("missing_text", f"field '{text_field}' is absent", doc_id)
    if not isinstance(text, str):
        return bad("invalid_text", f"field '{text_field}' has type {type(text).__name__}", doc_id)
    doc = {"id": doc_id, "text": text, "source": source, "line": line_no}
    for name in OPTIONAL_FIELDS:
        value = rec.get(name)
        doc[name] = None if value is None else str(value)
    return doc, None


class _ParseFileLines(beam.DoFn):
    """ReadableFile -> Document, with DeadLetter on the dead_letter tag (bad JSON, bad UTF-8, ...)."""

    def __init__(self, id_field: str, text_field: str):
        self.id_field = id_field
        self.text_field = text_field
        self.read = Metrics.counter("ingest", "lines_read")
        self.ok = Metrics.counter("ingest", "documents")
        self.bad = Metrics.counter("ingest", "dead_letter")

    def process(self, readable_file):
        path = readable_file.metadata.path
        with readable_file.open() as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue  # blank lines are not records
                self.read.inc()
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    self.bad.inc()
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                        "read", "invalid_utf8", source=path, line=line_no, detail=str(exc),
                        payload=raw.decode("utf-8", errors="replace")))
                    continue
                doc, err = parse_json_line(line, path, line_no, id_field=self.id_field,
                                           text_field=self.text_field)
                if err is not None:
                    self.bad.inc()
                    yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, err)
                else:
                    self.ok.inc()
                    yield doc


class ReadDocuments(beam.PTransform):
    """File pattern (local or gs://, JSONL) -> tagged PCollections `documents` and `dead_letter`.

    Lines are read as bytes and decoded per line, so one bad line never fails the file.
    """

    def __init__(self, file_pattern: str, *, id_field: str = "id", text_field: str = "text"):
        super().__init__()
        self.file_pattern = file_pattern
        self.id_field = id_field
        self.text_field = text_field

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self.file_pattern)
            | "ReadMatches" >> fileio.ReadMatches()
            | "Reshuffle" >> beam.Reshuffle()
            | "ParseLines" >> beam.ParDo(_ParseFileLines(self.id_field, self.text_field))
            .with_outputs(DEAD_LETTER_TAG, main="documents"))
