"""Reading a finished run back: summary.json and the duplicates table, for people and tests."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.io.sinks import join_path


def read_summary(output: str) -> dict:
    with FileSystems.open(join_path(output, "summary.json")) as handle:
        return json.loads(handle.read().decode("utf-8"))


def read_duplicates(output_or_dir: str) -> list[dict]:
    """All rows of a run's duplicates table, sorted by (doc_a, doc_b)."""
    base = output_or_dir.rstrip("/")
    if base.endswith("duplicates"):
        base = base[: -len("duplicates")].rstrip("/") or "."
    return sorted(read_table(base, "duplicates"), key=lambda r: (r["doc_a"], r["doc_b"]))


def table_files(output: str, table: str) -> list[str]:
    """The data files of one output table: its Parquet parts, or its JSONL parts when there are none."""
    for fmt in ("parquet", "jsonl"):
        paths = sorted(m.path for m in FileSystems.match([join_path(output, table, f"part-*.{fmt}")])[0].metadata_list)
        if paths:
            return paths
    return []


def read_table(output: str, table: str) -> list[dict]:
    """All rows of one output table of a run (units, unit_matches, groups, duplicates, dead_letter)."""
    rows: list[dict] = []
    for path in table_files(output, table):
        with FileSystems.open(path) as handle:
            if path.endswith(".parquet"):
                rows.extend(pq.read_table(handle).to_pylist())
            else:
                rows.extend(json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line)
    return rows


def values_close(a, b, tol: float = 2e-6) -> bool:
    """Two runs' cell values equal, floats within `tol` (a unit embedded in another batch moves its
    cosines in the 7th decimal); dicts, lists and JSON-encoded lists compared element by element."""
    if isinstance(a, str) and isinstance(b, str) and a.startswith("[") and b.startswith("["):
        return values_close(json.loads(a), json.loads(b), tol)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_close(x, y, tol) for x, y in zip(a, b))
    return a == b


def read_units(output: str) -> list[dict]:
    return read_table(output, "units")


def read_dead_letters(output: str) -> list[dict]:
    return read_table(output, "dead_letter")


def source_totals(by_source: dict) -> dict:
    """counts.by_source -> {"records", "processed", "dead_lettered" summed, "sources", "reconciled" (how many)}."""
    total = {k: sum(v.get(k, 0) for v in by_source.values()) for k in ("records", "processed", "dead_lettered")}
    return total | {"sources": len(by_source), "reconciled": sum(1 for v in by_source.values() if v.get("reconciled"))}


def _sources_line(by_source, listed: int = 5):
    """counts.by_source for the terminal: as it is for a few sources; for more, the totals and only the
    sources that do not reconcile (summary.json keeps every source)."""
    if not isinstance(by_source, dict) or len(by_source) <= listed:
        return by_source
    off = {k: v for k, v in by_source.items() if not v.get("reconciled")}
    total = source_totals(by_source)
    line = (f"{total['sources']} sources, {total['records']} records = {total['processed']} processed + "
            f"{total['dead_lettered']} dead-lettered, {total['reconciled']} reconciled")
    return line + (f"; NOT reconciled: {dict(list(off.items())[:listed])}" if off else " (per source in summary.json)")


def print_run_summary(output: str, top: int = 25) -> None:
    summary = read_summary(output)
    pairs = read_duplicates(output)
    counts = summary["counts"]
    lsh = summary.get("lsh", {}).get("document", {})
    print(f"\nrun {summary['run_id']}  model={summary['model']}  cosine>={summary['cosine_threshold']}  "
          f"jaccard>={summary.get('jaccard_threshold')}  LSH bands={lsh.get('bands')} rows={lsh.get('rows')}")
    files = summary.get("input_files") or {}
    if files:
        print("input: " + ", ".join(f"{pattern} ({n} file{'s' if n != 1 else ''})" for pattern, n in files.items()))
    print("counts: " + ", ".join(f"{k}={_sources_line(v) if k == 'by_source' else v}" for k, v in counts.items()))
    passages = sum(1 for r in pairs if r.get("relation") == "passage")
    print(f"{len(pairs)} document pairs ({len(pairs) - passages} duplicates, {passages} passage reuse); the "
          f"{min(top, len(pairs))} most similar (document cosine, jaccard, found by, matched units, relation):")

    def fmt(x):
        return "  -  " if x is None else f"{x:.3f}"

    groups = sorted(read_table(output, "groups"), key=lambda g: (-g["size"], g["group_id"]))
    if groups:
        print(f"{len(groups)} duplicate groups; largest: " + "; ".join(
            f"{g['size']} docs, canonical {g['canonical_id']}" for g in groups[:3]))
    for row in sorted(pairs, key=lambda r: (-(r["cosine"] or 0), -(r.get("jaccard") or 0)))[:top]:
        print(f"  {fmt(row['cosine'])}  {fmt(row.get('jaccard'))}  {row['method']:<12} {row.get('granularity') or '':<19}"
              f" {row.get('relation') or 'duplicate':<9} {row['doc_a']}  <->  {row['doc_b']}")
