import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.ingest import ReadDocuments, parse_json_line


def test_parse_valid_line_keeps_optional_fields():
    doc, err = parse_json_line('{"id": 7, "text": "hola", "lang": "es", "extra": 1}', "f.jsonl", 3)
    assert err is None
    assert doc == {"id": "7", "text": "hola", "source": "f.jsonl", "line": 3, "title": None, "url": None,
                   "lang": "es", "published_at": None}


def test_parse_reasons_for_bad_lines():
    cases = {
        '{"id": "a", "text": "trunc': "invalid_json",
        '["not", "an", "object"]': "not_an_object",
        '{"text": "no id"}': "missing_id",
        '{"id": "  ", "text": "blank id"}': "missing_id",
        '{"id": {"x": 1}, "text": "t"}': "invalid_id",
        '{"id": "b"}': "missing_text",
        '{"id": "c", "text": 12}': "invalid_text",
    }
    for line, reason in cases.items():
        doc, err = parse_json_line(line, "f.jsonl", 1)
        assert doc is None and err["reason"] == reason, line
        assert err["source"] == "f.jsonl" and err["line"] == 1 and err["payload"] == line


def test_read_documents_routes_every_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    good = [{"id": f"d{i}", "text": f"texto {i}"} for i in range(5)]
    raw = b"".join(json.dumps(d).encode() + b"\n" for d in good)
    raw += b'{"id": "bad-utf8", "text": "caf\xe9"}\n'      # latin-1 byte inside UTF-8 JSON
    raw += b'{"id": "x", "text": \n'                        # truncated JSON
    raw += b"\n   \n"                                       # blank lines are not records
    path.write_bytes(raw)
    with TestPipeline() as p:
        out = p | ReadDocuments(str(path))
        assert_that(out.documents | "Ids" >> beam.Map(lambda d: d["id"]), equal_to([d["id"] for d in good]),
                    label="documents")
        assert_that(out.dead_letter | "Reasons" >> beam.Map(lambda r: (r["reason"], r["line"])),
                    equal_to([("invalid_utf8", 6), ("invalid_json", 7)]), label="dead")
