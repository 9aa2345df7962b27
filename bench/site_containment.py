"""The containment clause (passage reuse of two documents), measured offline on a whole site (issue 19).

    # 1. one permissive run of the tuning site (every candidate at cosine >= 0.5 or Jaccard >= 0.35 kept;
    #    the command in bench/site_alignment.py)
    # 2. each document pair's containment, and the default rule with a containment clause, judged
    python bench/site_containment.py /tmp/lo-wide [--out bench/results/site-containment-lo.json]

A passage copied whole into a longer page (a course answer cut from a longer article) keeps most of
its shingles in the page while their Jaccard falls with the page's length, and on a site of short
topics its cosine margin is no help (Clough-Stevenson: 13 of 57 reused answers found by the site
defaults). The clause `containment >= t and cosine >= c` (containment: the share of the smaller
document's shingles, template text left out, found in the other) decides *passage reuse*, never a
whole-document duplicate, so it can cost passage precision only. This replays the default job
(bench/site_rule_grid.simulate with the alignment clause) and adds the clause over a grid: passage
pairs and their precision (the site judge: true when the two original pages share a non-template
paragraph, or gold names them), document precision and recall unchanged by construction.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from site_alignment import DEFAULT_RULE  # noqa: E402
from site_rule_grid import judged_rows, simulate  # noqa: E402

from transforms.matching.alignment import align, word_sequence  # noqa: E402
from transforms.reporting.report import read_table  # noqa: E402
from transforms.signals.minhash import MinHasher, shingle_overlap  # noqa: E402

ALIGNED = (0.65, 0.85, 0.55)  # the job's alignment clause (aligned, small_edits, cosine)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="--out directory of a permissive `pipelines.evaluate site` run")
    parser.add_argument("--out", help="write the grid (JSON)")
    parser.add_argument("--containments", default="0.2,0.25,0.3,0.35,0.4,0.5")
    parser.add_argument("--cosines", default="0.55,0.7")
    parser.add_argument("--min_shared", default="0,20,30,40", help="fewest shared shingles (the passage's length)")
    args = parser.parse_args(argv)
    # pairs the common-source clause made are not candidates of the searches (a permissive run makes
    # ~90,000 of them): the clause is replayed on what the searches found
    gold, rows = judged_rows(args.base, keep=lambda r: not (r["rule"] or "").startswith("common source"))
    texts = {u["doc_id"]: u["text"] for u in read_table(os.path.join(args.base, "run"), "units")
             if u["unit_type"] == "document"}
    hasher = MinHasher()
    ids = {d: hasher.shingle_ids(t) for d, t in texts.items()}
    tokens = {d: word_sequence(t) for d, t in texts.items()}
    empty = hasher.shingle_ids("")
    for r in rows:
        ida, idb = ids.get(r["doc_a"], empty), ids.get(r["doc_b"], empty)
        _, share_a, share_b = shingle_overlap(ida, idb)
        r["containment"] = max(share_a, share_b)
        r["shared"] = round(share_a * ida.size)
        alignment = align(tokens.get(r["doc_a"], word_sequence("")), tokens.get(r["doc_b"], word_sequence(""))) or (0, 0)
        r["aligned"], r["small_edits"] = alignment

    def aligned(r):
        return r["aligned"] >= ALIGNED[0] and r["small_edits"] >= ALIGNED[1] and (r["cosine"] or 0) >= ALIGNED[2]

    base = simulate(rows, gold, DEFAULT_RULE, extra=aligned)
    results = [dict(base, clause="(defaults without the clause)")]
    print(json.dumps(results[0], ensure_ascii=False))
    for t, c, m in itertools.product([float(x) for x in args.containments.split(",")],
                                     [float(x) for x in args.cosines.split(",")],
                                     [int(x) for x in args.min_shared.split(",")]):
        s = simulate(rows, gold, DEFAULT_RULE, extra=aligned,
                     passage=lambda r: (r["has_doc"] and r["containment"] >= t and (r["cosine"] or 0) >= c
                                        and r["shared"] >= m))
        s["clause"] = f"containment >= {t} and cosine >= {c} and shared >= {m}"
        results.append(s)
        print(json.dumps({k: s[k] for k in ("clause", "document_pairs", "document_precision", "passage_pairs",
                                            "passage_precision", "recall")}, ensure_ascii=False))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"base": args.base, "results": results}, handle, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
