"""Scores a run's duplicates table against gold duplicate pairs (pair level).

    python -m pipelines.evaluate --duplicates out/demo/duplicates --gold demo/gold.tsv

Gold format: TSV with a header `id_a  id_b  kind  [is_duplicate]`. Rows with is_duplicate 1 (or no
such column) are positives; rows with 0 are labelled hard negatives (e.g. same topic, no reuse);
every unlisted pair is a negative too. Recall is reported per kind, so missed kinds are visible.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict

from transforms.records import ordered_pair
from transforms.report import read_duplicates


def read_gold(path: str) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """Gold TSV -> (positives, labelled negatives), each {(id_a, id_b) ordered: kind}."""
    positives, negatives = {}, {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            target = negatives if str(row.get("is_duplicate", "1")).strip() == "0" else positives
            target[ordered_pair(row["id_a"], row["id_b"])] = row["kind"]
    return positives, negatives


def score_pairs(found: set[tuple[str, str]], gold: dict[tuple[str, str], str],
                negatives: dict[tuple[str, str], str] | None = None) -> dict:
    """Pair-level precision/recall/F1, recall per gold kind, false positives (and labelled ones hit)."""
    negatives = negatives or {}
    tp = found & set(gold)
    precision = len(tp) / len(found) if found else 1.0
    recall = len(tp) / len(gold) if gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair, kind in gold.items():
        per_kind[kind][1] += 1
        per_kind[kind][0] += pair in found
    return {
        "found": len(found), "gold": len(gold), "true_positives": len(tp),
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
        "recall_by_kind": {k: {"found": v[0], "of": v[1], "recall": round(v[0] / v[1], 4)}
                           for k, v in sorted(per_kind.items())},
        "false_positives": sorted(found - set(gold)),
        "labelled_negatives_found": {f"{a}~{b}": k for (a, b), k in sorted(negatives.items()) if (a, b) in found},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duplicates", required=True, help="duplicates/ directory (Parquet) of a run")
    parser.add_argument("--gold", required=True, help="gold pairs TSV (id_a, id_b, kind)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    found = {ordered_pair(r["doc_a"], r["doc_b"]) for r in read_duplicates(args.duplicates)}
    positives, negatives = read_gold(args.gold)
    scores = score_pairs(found, positives, negatives)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"\nagainst {args.gold}: precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  "
          f"F1 {scores['f1']:.3f}  ({scores['true_positives']} of {scores['gold']} gold pairs, "
          f"{scores['found']} found)")
    for kind, s in scores["recall_by_kind"].items():
        print(f"  {kind:<18} recall {s['recall']:.2f} ({s['found']}/{s['of']})")
    if scores["false_positives"]:
        print("  false positives: " + ", ".join(f"{a}~{b}" for a, b in scores["false_positives"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
