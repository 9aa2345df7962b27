"""Evidence for the default shingle size: best F1 of exact word-n-gram Jaccard per n.

    python bench/shingle_choice.py

Clough-Stevenson (../shared/data): the 475 answer-source pairs, positives cut+light (lexical reuse),
and the demo corpus (positives exact/html/light, all other pairs negative). Thresholds are swept on
the same data, so the F1 values are optimistic; they are used only to compare n.
"""
import csv
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from transforms.signals.minhash import MinHasher, MinHashParams, exact_jaccard  # noqa: E402
from transforms.text.normalize import clean_text  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def best_f1(scored):
    """scored: list of (score, is_positive) -> (best F1, threshold)."""
    best = (0.0, None)
    positives = sum(p for _, p in scored)
    for t in sorted({s for s, _ in scored}):
        tp = sum(1 for s, p in scored if s >= t and p)
        fp = sum(1 for s, p in scored if s >= t and not p)
        if tp:
            prec, rec = tp / (tp + fp), tp / positives
            best = max(best, (2 * prec * rec / (prec + rec), t))
    return best


def clough_pairs():
    base = os.path.join(REPO, "..", "shared", "data", "clough-stevenson")
    docs = {d["id"]: d for d in map(json.loads, open(os.path.join(base, "docs.jsonl"), encoding="utf-8"))}
    gold = {(r["id_a"], r["id_b"]): r["level"] for r in csv.DictReader(open(os.path.join(base, "gold_pairs.tsv")), delimiter="\t")}
    pairs = [(a, s) for a in docs if not a.startswith("orig") for s in docs if s.startswith("orig")]
    return {k: d["text"] for k, d in docs.items()}, [(a, b, gold.get((a, b)) in ("cut", "light")) for a, b in pairs]


def demo_pairs():
    docs = {d["id"]: clean_text(d["text"]) for d in map(json.loads, open(os.path.join(REPO, "demo", "corpus.jsonl"), encoding="utf-8"))}
    gold = {tuple(sorted((r["id_a"], r["id_b"]))): r["kind"] for r in csv.DictReader(open(os.path.join(REPO, "demo", "gold.tsv")), delimiter="\t")}
    return docs, [(a, b, gold.get((a, b)) in ("exact", "html", "light")) for a, b in itertools.combinations(sorted(docs), 2)]


def main():
    sets = {"clough-stevenson (cut+light)": clough_pairs(), "demo (exact+html+light)": demo_pairs()}
    print("| data | " + " | ".join(f"n={n}" for n in range(1, 6)) + " |")
    print("|---|" + "---|" * 5)
    for name, (texts, pairs) in sets.items():
        cells = []
        for n in range(1, 6):
            h = MinHasher(MinHashParams(shingle_n=n))
            ids = {k: h.shingle_ids(t) for k, t in texts.items()}
            f1, t = best_f1([(exact_jaccard(ids[a], ids[b]), p) for a, b, p in pairs])
            cells.append(f"F1 {f1:.3f} @ J>={t:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
