"""Word-sequence alignment as a document verification signal, measured offline on a whole site (issue 19).

    # 1. one permissive run of the tuning site (every candidate at cosine >= 0.5 or Jaccard >= 0.35 kept)
    python -m pipelines.evaluate site --package libreoffice-help-es --pages 5000 --out /tmp/lo-wide \
        --job_args "--vector_store memory --report_top 0 --cosine_threshold 0.5 --jaccard_threshold 0.35 \
                    --cosine_margin 0 --combined_cosine 0.5 --combined_jaccard 0.35 --aligned_cosine 0.5"
    # 2. alignment of every document pair, and the default rule with an alignment clause, judged
    python bench/site_alignment.py /tmp/lo-wide --cosines 0.5,0.55,0.6,0.65,0.7 \
        --sides small_edits,shorter_edits [--out bench/results/site-alignment-lo.json]

For each document pair of the run (the document units' text: template paragraphs left out), the word
sequences (transforms.text.shingle.shingle_tokens) are aligned exactly (rapidfuzz Indel: longest common
subsequence) and two numbers kept: `aligned` = 2 * LCS / (|a| + |b|), and `small_edits` = the smaller share of
either document's words that are aligned or inside an unaligned run of <= 3 words (scattered word edits,
not a different passage). A 30%-word-substituted copy keeps both high; two pages sharing one long code
example reach aligned 0.7-0.8 but leave long unaligned runs. The clause
`aligned >= a and small_edits >= g and cosine >= c` is added to the default document rule (as
bench/site_rule_grid.simulate applies rules) over a small grid; the precision/recall front is printed.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from site_rule_grid import judged_rows, simulate  # noqa: E402

from transforms.evaluation.site_corpus import CATEGORY  # noqa: E402
from transforms.matching.alignment import align_sides, word_sequence  # noqa: E402
from transforms.reporting.report import read_table  # noqa: E402

DEFAULT_RULE = "jaccard >= 0.6 or jaccard >= 0.45 and cosine >= 0.85 or cosine >= 0.85 and margin >= 1.5"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="--out directory of a permissive `pipelines.evaluate site` run")
    parser.add_argument("--out", help="write the front and the distributions here (JSON)")
    parser.add_argument("--cosines", default="0.7,0.75,0.8,0.85", help="cosine floors of the clause to try")
    parser.add_argument("--sides", default="small_edits",
                        help="small_edits (the smaller share of both sides) and/or shorter_edits (the shorter side's)")
    args = parser.parse_args(argv)
    gold, rows = judged_rows(args.base)
    tokens = {u["doc_id"]: word_sequence(u["text"]) for u in read_table(os.path.join(args.base, "run"), "units")
              if u["unit_type"] == "document"}
    empty = word_sequence("")
    for r in rows:
        a, b = tokens.get(r["doc_a"], empty), tokens.get(r["doc_b"], empty)
        r["aligned"], share_a, share_b = align_sides(a, b) or (0.0, 0.0, 0.0)
        r["small_edits"] = min(share_a, share_b)
        # the shorter side's share: a copy with sentences dropped is all aligned, its source is not
        r["shorter_edits"] = share_a if len(a) <= len(b) else share_b

    def label(r):
        if r["gold"] and CATEGORY.get(r["gold"]) != "passage":
            return CATEGORY[r["gold"]]
        return "near-duplicate originals" if r["same"] or r["near"] else "false"
    spread = collections.defaultdict(list)
    for r in rows:
        if r["has_doc"] and (r["cosine"] or 0) >= 0.7:
            spread[label(r)].append((round(r["aligned"], 3), round(r["small_edits"], 3)))
    distributions = {k: {"pairs": len(v), "aligned_top": sorted(v, reverse=True)[:10] if k == "false" else sorted(v)[:10]}
                     for k, v in sorted(spread.items())}
    results = [dict(simulate(rows, gold, DEFAULT_RULE), clause="(defaults)")]
    for side, a, g, c in itertools.product(args.sides.split(","), (0.55, 0.6, 0.65, 0.7), (0.75, 0.8, 0.85, 0.9),
                                           [float(x) for x in args.cosines.split(",")]):
        s = simulate(rows, gold, DEFAULT_RULE, extra=lambda r: r["aligned"] >= a and r[side] >= g and (r["cosine"] or 0) >= c)
        results.append(dict(s, clause=f"aligned >= {a} and {side} >= {g} and cosine >= {c}"))
    front, best = [results[0]], -1
    print(json.dumps(results[0], ensure_ascii=False))
    for s in sorted(results[1:], key=lambda s: (-(s["document_precision"] or 0),
                                                -sum(int(x.split("/")[0]) for x in s["recall"].values()))):
        found = sum(int(x.split("/")[0]) for k, x in s["recall"].items() if k != "passage")
        if found > best:
            best = found
            front.append(s)
            print(json.dumps(s, ensure_ascii=False))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"base": args.base, "front": front, "distributions": distributions,
                       "all": [{k: s[k] for k in ("clause", "document_pairs", "document_precision", "recall")}
                               for s in results]}, handle, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
