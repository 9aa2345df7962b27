"""Labelled pair sets for evaluation, from the gold formats users bring.

    data = load_docs_gold("docs.jsonl", "gold_pairs.tsv", anchor=("category", "orig"), group_field="task",
                          positive_kinds={"cut", "light", "heavy"})
    data = load_sts("sts-train.csv", "sts-dev.csv", cutoff=4.0)

Formats:
- docs + gold pairs: `docs.jsonl` lines `{"id", "text", ...any fields}`; `gold_pairs.tsv` with a header
  `id_a  id_b  <kind column: kind or level>  [is_duplicate]`. Rows with is_duplicate 0 are labelled
  negatives. The labelled universe is every pair of documents (`anchor=None`), or every pair of a
  non-anchor document with an anchor document (`anchor=(field, value)`: e.g. answers x source texts),
  so unlabelled pairs (two answers that copied the same source) stay out of precision. Pairs in the
  universe that are not gold positives are negatives: `hard_negative` when both share `group_field`
  (same topic), else `negative`.
- STS CSV without header: `sentence1,sentence2,score`; positives score >= cutoff. A tune file and a
  test file give the split.
"""
from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class LabelledPairs:
    """Texts and labelled pairs; `split[i]` is 'tune' or 'test' where the data brings its own split,
    `groups[i]` the group for leave-one-group-out splits otherwise; `scores` the graded gold (STS)."""

    name: str
    texts: dict[str, str]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        kinds: dict[str, int] = {}
        for k in self.kinds:
            kinds[k] = kinds.get(k, 0) + 1
        out = {"name": self.name, "documents": len(self.texts), "pairs": len(self.pairs),
               "positives": int(sum(self.labels)), "kinds": dict(sorted(kinds.items()))}
        if self.split:
            for part in ("tune", "test"):
                idx = [i for i, s in enumerate(self.split) if s == part]
                out[f"{part}_pairs"] = len(idx)
                out[f"{part}_positives"] = sum(self.labels[i] for i in idx)
        return out


def kind_column(fieldnames) -> str:
    """The gold TSV's column naming each pair's kind (kind, level or label)."""
    for name in ("kind", "level", "label"):
        if name in fieldnames:
            return name
    raise ValueError(f"gold TSV needs a kind/level column, has {fieldnames}")


def load_docs_gold(docs_path: str, gold_path: str, *, anchor: Optional[tuple[str, str]] = None,
                   group_field: Optional[str] = None, positive_kinds: Optional[set] = None,
                   text_field: str = "text", name: str = "") -> LabelledPairs:
    """docs.jsonl + gold TSV -> LabelledPairs over the labelled universe (see the module docstring)."""
    with open(docs_path, encoding="utf-8") as handle:
        docs = {d["id"]: d for d in map(json.loads, filter(str.strip, handle))}
    gold: dict[tuple[str, str], tuple[str, bool]] = {}
    with open(gold_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        kind_col = kind_column(reader.fieldnames or [])
        for row in reader:
            a, b = sorted((row["id_a"], row["id_b"]))
            missing = {a, b} - set(docs)
            if missing:
                raise ValueError(f"gold pair {a}~{b}: unknown document id(s) {sorted(missing)}")
            is_dup = str(row.get("is_duplicate", "1")).strip() != "0"
            kind = row[kind_col]
            gold[(a, b)] = (kind, is_dup and (positive_kinds is None or kind in positive_kinds))
    if anchor:
        field_name, value = anchor
        anchors = sorted(i for i, d in docs.items() if str(d.get(field_name)) == value)
        others = sorted(i for i in docs if i not in set(anchors))
        universe = sorted({tuple(sorted((o, a))) for o in others for a in anchors})
    else:
        universe = list(itertools.combinations(sorted(docs), 2))
    out = LabelledPairs(name or docs_path, {i: d.get(text_field) or "" for i, d in docs.items()})
    for a, b in universe:
        same_group = bool(group_field) and docs[a].get(group_field) == docs[b].get(group_field)
        kind, positive = gold.get((a, b), ("hard_negative" if same_group else "negative", False))
        if (a, b) in gold and not positive and not kind.endswith("negative"):
            kind = f"{kind} (not counted positive)"
        out.pairs.append((a, b))
        out.labels.append(positive)
        out.kinds.append(kind)
        out.groups.append(str(docs[a].get(group_field)) if group_field else "")
    return out


def load_sts(tune_path: str, test_path: str, *, cutoff: float = 4.0, limit_tune: Optional[int] = None,
             limit_test: Optional[int] = None, name: str = "") -> LabelledPairs:
    """STS CSVs (sentence1, sentence2, score) -> LabelledPairs with split tune/test, label score >= cutoff."""
    out = LabelledPairs(name or test_path, {})
    for split, path, limit in (("tune", tune_path, limit_tune), ("test", test_path, limit_test)):
        with open(path, newline="", encoding="utf-8") as handle:
            for i, row in enumerate(csv.reader(handle)):
                if limit is not None and i >= limit:
                    break
                if len(row) < 3:
                    raise ValueError(f"{path}:{i + 1}: expected sentence1,sentence2,score")
                a, b = f"{split}{i}a", f"{split}{i}b"
                out.texts[a], out.texts[b] = row[0], row[1]
                score = float(row[2])
                out.pairs.append((a, b))
                out.labels.append(score >= cutoff)
                out.kinds.append("positive" if score >= cutoff else "negative")
                out.split.append(split)
                out.scores.append(score)
    return out
