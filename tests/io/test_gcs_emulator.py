"""Beam reads and writes gs:// through the live GCS emulator (STORAGE_EMULATOR_HOST)."""
import json

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.ingest import ReadCorpus, SourceConfig

pytestmark = pytest.mark.integration


def test_beam_writes_and_reads_text_on_gcs(gcs_bucket):
    lines = [f"línea {i}" for i in range(50)]
    with TestPipeline() as p:
        _ = p | beam.Create(lines) | beam.io.WriteToText(f"{gcs_bucket}/out/part", file_name_suffix=".txt")
    written = FileSystems.match([f"{gcs_bucket}/out/part*"])[0].metadata_list
    assert written and all(m.path.startswith(gcs_bucket) for m in written)
    with TestPipeline() as p:
        assert_that(p | beam.io.ReadFromText(f"{gcs_bucket}/out/part*"), equal_to(lines))


def test_read_documents_from_gcs_with_dead_letters(gcs_bucket):
    path = f"{gcs_bucket}/in/docs.jsonl"
    with FileSystems.create(path) as handle:
        handle.write(b"".join(json.dumps({"id": f"g{i}", "text": "texto"}).encode() + b"\n" for i in range(3)))
        handle.write(b"{broken\n")
    with TestPipeline() as p:
        out = p | ReadCorpus(SourceConfig(pattern=f"{gcs_bucket}/in/*.jsonl", fmt="jsonl"))
        assert_that(out.documents | beam.Map(lambda d: (d["id"], d["source"])),
                    equal_to([(f"g{i}", path) for i in range(3)]), label="docs")
        assert_that(out.dead_letter | beam.Map(lambda r: r["reason"]), equal_to(["invalid_json"]), label="dead")
