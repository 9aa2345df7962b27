"""Opt-in: what the BigQuery emulator cannot serve, against real BigQuery.

Run with `DEDUP_REAL_GCP_PROJECT=my-project DEDUP_REAL_GCS_TEMP=gs://bucket/tmp` and application
default credentials; skipped otherwise (and always in CI, which has no network). Covers Beam's
`query=` read (standard SQL) through our ReadCorpus, on a public dataset.
"""
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from transforms.io.ingest import FieldMap, ReadCorpus, SourceConfig

PROJECT = os.environ.get("DEDUP_REAL_GCP_PROJECT")
TEMP = os.environ.get("DEDUP_REAL_GCS_TEMP")

pytestmark = [pytest.mark.real_gcp,
              pytest.mark.skipif(not (PROJECT and TEMP), reason="opt-in: set DEDUP_REAL_GCP_PROJECT and DEDUP_REAL_GCS_TEMP")]


def test_query_read_from_real_bigquery():
    query = ("SELECT CAST(id AS STRING) AS id, title AS text FROM `bigquery-public-data.hacker_news.full` "
             "WHERE title IS NOT NULL AND type = 'story' ORDER BY id LIMIT 20")
    config = SourceConfig(bq_query=query, fields=FieldMap(id="id", text="text"))
    options = PipelineOptions([f"--project={PROJECT}", f"--temp_location={TEMP}"])
    with TestPipeline(options=options) as p:
        read = p | ReadCorpus(config)
        assert_that(read.documents | beam.combiners.Count.Globally(), lambda c: c == [20] or pytest.fail(str(c)))
