"""WriteTable: deterministic shards, the same rows give the same bytes, nothing half-written left."""
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.reporting.report import read_table
from transforms.io.sinks import GROUPS_SCHEMA, WriteTable, shard_count


def write(rows, out, **kw):
    with TestPipeline() as p:
        p | beam.Create(rows, reshuffle=True) | WriteTable(str(out), "groups", GROUPS_SCHEMA, **kw)
    return {f.name: f.read_bytes() for f in sorted((out / "groups").iterdir())}


def test_same_rows_in_any_order_give_byte_identical_shards(tmp_path):
    rows = [{"group_id": f"g{i:03d}", "canonical_id": f"d{i}", "size": 2, "members": [f"d{i}", f"e{i}"],
             "run_id": "r", "ignored_column": i} for i in range(10)]
    first = write(rows, tmp_path / "a", rows_per_file=3)
    second = write(list(reversed(rows)), tmp_path / "b", rows_per_file=3)
    assert first == second
    stems = {n.rsplit(".", 1)[0] for n in first}
    assert 2 <= len(stems) <= 4 and all(n.endswith("-of-00004") for n in stems)  # ceil(10 / 3) shards
    assert sorted(first) == sorted(f"{s}.{fmt}" for s in stems for fmt in ("jsonl", "parquet"))
    back = sorted(read_table(str(tmp_path / "a"), "groups"), key=lambda r: r["group_id"])
    assert back == [{k: v for k, v in r.items() if k != "ignored_column"} for r in rows]
    jsonl = {r["group_id"] for name, data in first.items() if name.endswith(".jsonl")
             for r in map(json.loads, data.decode().splitlines())}
    assert jsonl == {r["group_id"] for r in rows}


def test_rewrite_replaces_files_and_leaves_no_temporaries(tmp_path):
    rows = [{"group_id": "g1", "canonical_id": "a", "size": 2, "members": ["a", "b"], "run_id": "r"}]
    write(rows, tmp_path, formats=("parquet",))
    files = write(rows, tmp_path, formats=("parquet",))
    assert list(files) == ["part-00000-of-00001.parquet"]


def test_shard_count_and_formats_are_checked():
    assert (shard_count(0, 10), shard_count(10, 10), shard_count(11, 10)) == (1, 1, 2)
    with pytest.raises(ValueError, match="formats"):
        WriteTable("/tmp/x", "groups", GROUPS_SCHEMA, formats=("csv",))
