"""Every input format and source -> Documents and dead letters, with provenance and stable ids."""
import json

import apache_beam as beam
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.ingest import DropDuplicateIds, FieldMap, ReadCorpus, SourceConfig, stable_id


def check(config, docs_expected, dead_expected):
    with TestPipeline() as p:
        read = p | ReadCorpus(config)
        assert_that(read.documents | "D" >> beam.Map(lambda d: (d["id"], d["text"])), equal_to(docs_expected),
                    label="docs")
        assert_that(read.dead_letter | "X" >> beam.Map(lambda r: (r["reason"], r["line"])), equal_to(dead_expected),
                    label="dead")


def test_csv_with_field_mapping_and_bad_rows(tmp_path):
    path = tmp_path / "articles.csv"
    path.write_text('slug,body,headline\n'
                    'a1,"Texto con, coma y ""comillas""",Uno\n'
                    'a2,Otro texto,Dos,extra-cell\n'
                    ',Sin id,Tres\n'
                    'a4,Cuarto,Cuatro\n', encoding="utf-8")
    fields = FieldMap(id="slug", text="body", title="headline")
    check(SourceConfig(pattern=str(path), fields=fields),
          [("a1", 'Texto con, coma y "comillas"'), ("a4", "Cuarto")],
          [("malformed_csv_row", 3), ("missing_id", 4)])


def test_csv_without_id_column_gets_stable_ids(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("text\nprimero\nsegundo\n", encoding="utf-8")
    check(SourceConfig(pattern=str(path)),
          [(stable_id(str(path), 2), "primero"), (stable_id(str(path), 3), "segundo")], [])


@pytest.mark.slow
def test_parquet_with_wrong_types_and_nulls(tmp_path):
    path = tmp_path / "docs.parquet"
    table = pa.table({"id": ["p1", "p2", None], "text": ["uno", None, "tres"], "n": [1, 2, 3]})
    pq.write_table(table, path)
    check(SourceConfig(pattern=str(path)), [("p1", "uno")], [("missing_text", 2), ("missing_id", 3)])
    typed = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [10, 20]}), typed)  # wrong type in the text column
    check(SourceConfig(pattern=str(typed)), [], [("invalid_text", 1), ("invalid_text", 2)])


def test_avro(tmp_path):
    path = tmp_path / "docs.avro"
    schema = {"type": "record", "name": "Doc", "fields": [{"name": "id", "type": "string"},
                                                          {"name": "text", "type": ["null", "string"]}]}
    with open(path, "wb") as f:
        fastavro.writer(f, schema, [{"id": "v1", "text": "avro uno"}, {"id": "v2", "text": None}])
    check(SourceConfig(pattern=str(path)), [("v1", "avro uno")], [("missing_text", 2)])


@pytest.mark.slow
def test_text_and_html_files_one_document_each_with_stable_ids(tmp_path):
    (tmp_path / "a.txt").write_text("Un texto plano.", encoding="utf-8")
    (tmp_path / "b.html").write_text("<html><body><p>Hola</p></body></html>", encoding="utf-8")
    (tmp_path / "c.txt").write_bytes(b"caf\xe9")
    check(SourceConfig(pattern=str(tmp_path / "*.txt")),
          [(stable_id(str(tmp_path / "a.txt")), "Un texto plano.")], [("invalid_utf8", None)])
    check(SourceConfig(pattern=str(tmp_path / "*.html")),
          [(stable_id(str(tmp_path / "b.html")), "<html><body><p>Hola</p></body></html>")], [])


@pytest.mark.slow
def test_unreadable_file_is_one_dead_letter_and_oversize_is_rejected(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    check(SourceConfig(pattern=str(tmp_path / "*.parquet")), [], [("unreadable_file", None)])
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"id": "big", "text": "x" * 5000}) + "\n" + json.dumps({"id": "ok", "text": "y"}) + "\n")
    check(SourceConfig(pattern=str(big), max_chars=1000), [("ok", "y")], [("oversize", 1)])


def test_duplicate_ids_keep_the_first_and_dead_letter_the_rest(tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "x", "text": "primera versión"}, {"id": "y", "text": "otro"},
        {"id": "x", "text": "segunda versión"}, {"id": "x", "text": "primera versión"}]) + "\n")
    with TestPipeline() as p:
        unique = (p | ReadCorpus(SourceConfig(pattern=str(path)))).documents | DropDuplicateIds()
        assert_that(unique.documents | "D" >> beam.Map(lambda d: (d["id"], d["text"], d["line"])),
                    equal_to([("x", "primera versión", 1), ("y", "otro", 2)]), label="kept")
        assert_that(unique.dead_letter | "X" >> beam.Map(lambda r: (r["reason"], r["line"], "different" in r["detail"])),
                    equal_to([("duplicate_id", 3, True), ("duplicate_id", 4, False)]), label="dead")


def test_config_requires_exactly_one_source():
    with pytest.raises(ValueError):
        SourceConfig()
    with pytest.raises(ValueError):
        SourceConfig(pattern="a", bq_table="p:d.t")
    with pytest.raises(ValueError):
        SourceConfig(pattern="a", fmt="xml")


@pytest.mark.integration
def test_parquet_on_gcs(gcs_bucket):
    path = f"{gcs_bucket}/corpus/docs.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": ["g1", "g2"], "text": ["en gcs", "también"]}), sink)
    with FileSystems.create(path) as handle:
        handle.write(sink.getvalue().to_pybytes())
    check(SourceConfig(pattern=f"{gcs_bucket}/corpus/*.parquet"), [("g1", "en gcs"), ("g2", "también")], [])


@pytest.mark.integration
def test_bigquery_table_direct_read_and_query_sql(bigquery_emulator, gcs_bucket):
    """DIRECT_READ of a table through Beam; the query's SQL through the BigQuery client (the emulator
    cannot serve Beam's `query=` reads, which stay covered only against real BigQuery)."""
    import uuid

    from apache_beam.options.pipeline_options import PipelineOptions
    from google.cloud import bigquery

    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    bigquery_emulator.create_dataset(bigquery.Dataset(f"data-project.{dataset}"))
    table_id = f"data-project.{dataset}.articles"
    table = bigquery.Table(table_id, schema=[bigquery.SchemaField("article_id", "STRING"),
                                             bigquery.SchemaField("body", "STRING"),
                                             bigquery.SchemaField("lang", "STRING")])
    bigquery_emulator.create_table(table)
    rows = [{"article_id": "b1", "body": "desde bigquery", "lang": "es"},
            {"article_id": "b2", "body": None, "lang": "es"},
            {"article_id": "b3", "body": "from bigquery", "lang": "en"}]
    assert not bigquery_emulator.insert_rows_json(table_id, rows)
    fields = FieldMap(id="article_id", text="body")
    config = SourceConfig(bq_table=f"data-project:{dataset}.articles", fields=fields)
    options = PipelineOptions(["--project=test-project", f"--temp_location={gcs_bucket}/tmp"])
    with TestPipeline(options=options) as p:
        read = p | ReadCorpus(config)
        assert_that(read.documents | "D" >> beam.Map(lambda d: (d["id"], d["text"], d["source"])),
                    equal_to([("b1", "desde bigquery", f"bq:{config.bq_table}"),
                              ("b3", "from bigquery", f"bq:{config.bq_table}")]), label="docs")
        assert_that(read.dead_letter | "X" >> beam.Map(lambda r: r["reason"]), equal_to(["missing_text"]),
                    label="dead")
    query = f"SELECT article_id, body FROM `{table_id}` WHERE lang = 'es' AND body IS NOT NULL"
    assert [dict(r) for r in bigquery_emulator.query(query).result()] == [{"article_id": "b1", "body": "desde bigquery"}]


@pytest.mark.slow
def test_broken_inputs_lose_nothing(tmp_path):
    """Truncated JSON, wrong encoding, navigation-only HTML, a 50 MB document, an empty file and a
    duplicate id: every record is a document or a dead letter with the right reason."""
    from transforms.text.normalize import CleanDocuments

    (tmp_path / "empty.jsonl").write_bytes(b"")
    with open(tmp_path / "big.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "huge", "text": "palabra " * 6_250_000}) + "\n")  # 50 MB of text
        f.write(json.dumps({"id": "fine", "text": "Un documento normal y corriente para la prueba."}) + "\n")
    (tmp_path / "mixed.jsonl").write_bytes(
        b'{"id": "trunc", "text": "se corta aqu\n'
        + '{"id": "latin", "text": "Canción de cuna"}\n'.encode("latin-1")
        + json.dumps({"id": "nav", "text": "<html><body><nav><a href='/'>Inicio</a> <a href='/x'>Cursos</a></nav>"
                                           "<footer>Aviso legal</footer></body></html>"}).encode() + b"\n"
        + json.dumps({"id": "fine", "text": "Otra vez el mismo id con otro texto distinto."}).encode() + b"\n")
    with TestPipeline() as p:
        read = p | ReadCorpus(SourceConfig(pattern=str(tmp_path / "*.jsonl")))
        unique = read.documents | DropDuplicateIds()
        cleaned = unique.documents | CleanDocuments(min_chars=20)
        dead = (read.dead_letter, unique.dead_letter, cleaned.dead_letter) | beam.Flatten()
        assert_that(cleaned.documents | "Ids" >> beam.Map(lambda d: d["id"]), equal_to(["fine"]), label="kept")
        assert_that(dead | "Reasons" >> beam.Map(lambda r: (r["record_id"], r["reason"], len(r["payload"] or "") <= 2100)),
                    equal_to([(None, "invalid_json", True), (None, "invalid_utf8", True), ("huge", "oversize", True),
                              ("nav", "empty_after_cleaning", True), ("fine", "duplicate_id", True)]), label="dead")
