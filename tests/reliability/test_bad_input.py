"""Bad input: a generated corpus mixing valid documents with every kind of broken record, over JSONL,
CSV and Parquet in one run. The job finishes; every record is in the output or a dead-letter sink with
its reason; the counts reconcile exactly per source."""
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.dedup import run
from transforms.reporting.report import read_dead_letters, read_summary, read_units

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def valid(i: int) -> dict:
    return {"id": f"ok-{i}", "text": f"Documento válido número {i}. Explica un tema del curso con frases completas "
                                     f"y suficientes palabras para que nada lo descarte por corto ({i})."}


def build_corpus(tmp_path: Path) -> tuple[Path, set, dict]:
    """-> (input dir, ids expected in the output, {kind: (source file name, expected dead-letter reason)})."""
    d = tmp_path / "in"
    d.mkdir()
    good, kinds = set(), {}
    lines = []
    for i in range(30):
        lines.append(json.dumps(valid(i), ensure_ascii=False).encode())
        good.add(f"ok-{i}")
    bad_json = {
        "truncated_json": (b'{"id": "trunc", "text": "sin cerrar', "invalid_json"),
        "invalid_utf8": (b'{"id": "bin", "text": "\xff\xfe\xfa texto"}', "invalid_utf8"),
        "latin1_mixed_encoding": ('{"id": "latin", "text": "café con leche y más palabras"}'.encode("latin-1"),
                                  "invalid_utf8"),
        "nul_bytes": (json.dumps({"id": "nul", "text": "texto con \u0000 nulo"}).encode(), "invalid_text"),
        "oversize_50mb": (json.dumps({"id": "huge", "text": "palabra " * 6_600_000}).encode(), "oversize"),
        "deep_nesting_html": (json.dumps({"id": "deep", "text": "<html><body>" + "<div>" * 5000 + "hola" +
                                          "</div>" * 5000 + "</body></html>"}).encode(), "empty_after_cleaning"),
        "script_only_html": (json.dumps({"id": "script", "text": "<html><head><script>var x = 'no es texto';"
                                         "</script></head><body><script>track()</script></body></html>"}).encode(),
                             "empty_after_cleaning"),
        "empty_text": (json.dumps({"id": "empty", "text": ""}).encode(), "empty_after_cleaning"),
        "whitespace_only": (json.dumps({"id": "blank", "text": " \n\t \u00a0 "}).encode(), "empty_after_cleaning"),
        "duplicate_id_other_text": (json.dumps({"id": "ok-3", "text": "Otro texto distinto con el mismo id."}).encode(),
                                    "duplicate_id"),
        "not_an_object": (b'["una", "lista"]', "not_an_object"),
        "missing_id": (json.dumps({"text": "sin identificador pero con texto"}).encode(), "missing_id"),
        "id_of_wrong_type": (json.dumps({"id": ["a"], "text": "id que es una lista"}).encode(), "invalid_id"),
        "text_of_wrong_type": (json.dumps({"id": "num", "text": 12345}).encode(), "invalid_text"),
    }
    for kind, (line, reason) in bad_json.items():
        lines.append(line)
        kinds[kind] = ("mixed.jsonl", reason)
    (d / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    csv_lines = ["id,text,title"] + [f'csv-{i},"{valid(i)["text"]}",t{i}' for i in range(5)]
    good |= {f"csv-{i}" for i in range(5)}
    csv_lines += ['csv-empty,"",t', 'csv-quote,"never closed,t']
    kinds["csv_empty_text"] = ("docs.csv", "empty_after_cleaning")
    kinds["csv_broken_quote"] = ("docs.csv", "malformed_csv_row")
    (d / "docs.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")

    pq.write_table(pa.table({"id": ["pq-0", "pq-1", None], "text": [valid(0)["text"], valid(1)["text"], "sin id"]}),
                   d / "good.parquet")
    good |= {"pq-0", "pq-1"}
    kinds["parquet_null_id"] = ("good.parquet", "missing_id")
    pq.write_table(pa.table({"id": ["pt-0", "pt-1"], "text": pa.array([1, 2], pa.int64())}), d / "typed.parquet")
    kinds["parquet_text_column_of_ints"] = ("typed.parquet", "invalid_text")
    (d / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    kinds["unreadable_parquet_file"] = ("broken.parquet", "unreadable_file")
    return d, good, kinds


def test_every_broken_record_is_dead_lettered_with_its_reason_and_counts_reconcile(tmp_path, capsys):
    inp, good, kinds = build_corpus(tmp_path)
    out = tmp_path / "out"
    run(["--input", str(inp / "*"), "--output", str(out), "--vector_store", "memory", "--report_top", "3"])
    counts = read_summary(str(out))["counts"]
    dead = read_dead_letters(str(out))
    units = read_units(str(out))

    assert {u["doc_id"] for u in units if u["unit_type"] == "document"} == good  # every valid document made it
    reasons = Counter((Path(d["source"] or "").name, d["reason"]) for d in dead)
    for kind, (source, reason) in kinds.items():
        assert reasons[(source, reason)] >= 1, (kind, source, reason, reasons)
    by_source = counts["by_source"]
    assert all(v["reconciled"] for v in by_source.values()), by_source
    assert sum(v["records"] for v in by_source.values()) == sum(v["processed"] + v["dead_lettered"]
                                                                for v in by_source.values())
    assert sum(v["processed"] for v in by_source.values()) == len(good)
    assert sum(v["dead_lettered"] for v in by_source.values()) == len(dead)
    assert all(len(d["payload"] or "") <= 2100 for d in dead)  # a 50 MB record is not copied whole
    with capsys.disabled():
        print(f"\nbad-input suite: {len(kinds)} kinds over {len(by_source)} files, "
              f"{sum(v['records'] for v in by_source.values())} records tried, {len(good)} valid kept, "
              f"{len(dead)} dead-lettered, 0 lost; reasons: {dict(sorted(Counter(d['reason'] for d in dead).items()))}")
