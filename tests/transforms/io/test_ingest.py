import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.ingest import FieldMap, ReadCorpus, SourceConfig


def _read(path, **fields):
    return ReadCorpus(SourceConfig(pattern=str(path), fmt="jsonl", fields=FieldMap(**fields)))


def test_a_valid_line_keeps_optional_fields(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": 7, "text": "hola", "lang": "es", "extra": 1}\n')
    with TestPipeline() as p:
        out = p | _read(path)
        assert_that(out.documents, equal_to([{"id": "7", "text": "hola", "source": str(path), "line": 1,
                                              "title": None, "url": None, "lang": "es", "published_at": None}]))


def test_reasons_for_bad_lines(tmp_path):
    cases = {
        '{"id": "a", "text": "trunc': "invalid_json",
        '["not", "an", "object"]': "not_an_object",
        '{"text": "no id"}': "missing_id",
        '{"id": "  ", "text": "blank id"}': "missing_id",
        '{"id": {"x": 1}, "text": "t"}': "invalid_id",
        '{"id": "b"}': "missing_text",
        '{"id": "c", "text": 12}': "invalid_text",
    }
    path = tmp_path / "f.jsonl"
    path.write_text("".join(line + "\n" for line in cases))
    expected = [(i, reason, line) for i, (line, reason) in enumerate(cases.items(), start=1)]
    with TestPipeline() as p:
        out = p | _read(path)
        assert_that(out.documents, equal_to([]), label="none")
        assert_that(out.dead_letter | beam.Map(lambda r: (r["line"], r["reason"], r["payload"])),
                    equal_to(expected), label="reasons")


def test_read_documents_routes_every_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    good = [{"id": f"d{i}", "text": f"texto {i}"} for i in range(5)]
    raw = b"".join(json.dumps(d).encode() + b"\n" for d in good)
    raw += b'{"id": "bad-utf8", "text": "caf\xe9"}\n'      # latin-1 byte inside UTF-8 JSON
    raw += b'{"id": "x", "text": \n'                        # truncated JSON
    raw += b"\n   \n"                                       # blank lines are not records
    path.write_bytes(raw)
    with TestPipeline() as p:
        out = p | _read(path)
        assert_that(out.documents | "Ids" >> beam.Map(lambda d: d["id"]), equal_to([d["id"] for d in good]),
                    label="documents")
        assert_that(out.dead_letter | "Reasons" >> beam.Map(lambda r: (r["reason"], r["line"])),
                    equal_to([("invalid_utf8", 6), ("invalid_json", 7)]), label="dead")
