"""Beam's BigQuery IO against the live BigQuery emulator (bqemulator).

Covered here: ReadFromBigQuery(method=DIRECT_READ) of a table and WriteToBigQuery with FILE_LOADS
(load files staged on the GCS emulator). Not supported by the emulator, and so covered only against
real BigQuery: EXPORT reads and `query=` reads.
Test data lives in project `data-project`, not the pipeline's `--project`: Beam's DIRECT_READ
clean-up would otherwise delete the source dataset (the emulator ignores label filters).
"""
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

pytestmark = pytest.mark.integration
DATA_PROJECT = "data-project"


def pipeline_options(gcs_bucket):
    return PipelineOptions(["--project=test-project", f"--temp_location={gcs_bucket}/tmp"])


def test_file_loads_write_then_direct_read(bigquery_emulator, gcs_bucket):
    from google.cloud import bigquery

    dataset = f"ds_{uuid.uuid4().hex[:8]}"
    bigquery_emulator.create_dataset(bigquery.Dataset(f"{DATA_PROJECT}.{dataset}"))
    table = f"{DATA_PROJECT}:{dataset}.pairs"
    rows = [{"doc_a": f"a{i}", "doc_b": f"b{i}", "cosine": 0.9 + i / 100} for i in range(5)]
    schema = "doc_a:STRING,doc_b:STRING,cosine:FLOAT"

    with TestPipeline(options=pipeline_options(gcs_bucket)) as p:
        _ = p | beam.Create(rows) | beam.io.WriteToBigQuery(
            table, schema=schema, method=beam.io.WriteToBigQuery.Method.FILE_LOADS,
            create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
            write_disposition=beam.io.BigQueryDisposition.WRITE_TRUNCATE,
            custom_gcs_temp_location=f"{gcs_bucket}/bq-load")

    stored = [dict(r) for r in bigquery_emulator.query(
        f"SELECT doc_a, doc_b, cosine FROM `{DATA_PROJECT}.{dataset}.pairs` ORDER BY doc_a").result()]
    assert [r["doc_a"] for r in stored] == [f"a{i}" for i in range(5)]

    with TestPipeline(options=pipeline_options(gcs_bucket)) as p:
        read = p | beam.io.ReadFromBigQuery(table=table, method=beam.io.ReadFromBigQuery.Method.DIRECT_READ,
                                            selected_fields=["doc_a", "cosine"])
        assert_that(read | beam.Map(lambda r: (r["doc_a"], round(r["cosine"], 2))),
                    equal_to([(r["doc_a"], round(r["cosine"], 2)) for r in rows]))
