"""Chooses the document decision rule on a whole site, offline (how issue 19's defaults were chosen).

    # 1. one permissive run, so every candidate a stricter rule could keep is in the tables
    python -m pipelines.evaluate site --package libreoffice-help-es --pages 5000 --out /tmp/site-wide \
        --job_args "--es_url http://127.0.0.1:9200 --es_index tune --template_min_share 0 \
                    --cosine_threshold 0.75 --jaccard_threshold 0.35 --cosine_margin 0"
    # 2. every rule of the grid applied to its rows and judged as score_site_run judges
    python bench/site_rule_grid.py /tmp/site-wide [--rule 'jaccard >= 0.6 or ...']

A rule decides the document level; a pair it rejects stays a pair when its paragraph matches (at the
default unit rule: J >= 0.5, or cosine >= 0.9 with margin >= 1.2) exist: a duplicate when they cover
>= 0.8 of both documents' non-template text, else passage reuse. Frames are not re-derived (the
simulation reproduced the real runs of the old and new defaults: 282 and 244 document pairs).
Prints the precision/recall Pareto front (document precision, planted document pairs found).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.evaluation.perturb import _plain  # noqa: E402
from transforms.evaluation.site_corpus import (CATEGORY, _paragraph_sets, near_duplicate_pages,  # noqa: E402
                                               share_a_passage)
from transforms.matching.rollup import covered_chars  # noqa: E402
from transforms.matching.rules import Rule  # noqa: E402
from transforms.reporting.report import read_table  # noqa: E402


def load(base: str):
    docs = [json.loads(line) for line in open(os.path.join(base, "corpus", "docs.jsonl"), encoding="utf-8")]
    with open(os.path.join(base, "corpus", "gold.tsv"), encoding="utf-8") as handle:
        next(handle)
        gold = [tuple(line.rstrip("\n").split("\t")) for line in handle]
    return docs, gold


def judged_rows(base: str, keep=None) -> tuple[list, list]:
    """-> (gold, rows of the run's duplicates table (those `keep` keeps) with: same (copies of one page),
    near (near-duplicate originals), shares (originals share a passage), has_doc, has_parts, pcov
    (passage coverage))."""
    docs, gold = load(base)
    source = {d["id"]: d.get("source_id") or d["id"] for d in docs}
    parent = {d["id"]: d["id"] for d in docs}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b, kind, _ in gold:
        if CATEGORY[kind] != "passage":
            parent[find(a)] = find(b)
    expected = {tuple(sorted((a, b))): kind for a, b, kind, _ in gold}
    own = _paragraph_sets({d["id"]: _plain(d["text"]) for d in docs if not d.get("source_id")}, 40, 9)
    run = os.path.join(base, "run")
    chars = {u["doc_id"]: len(u["text"]) for u in read_table(run, "units") if u["unit_type"] == "document"}
    parts = collections.defaultdict(list)
    for m in read_table(run, "unit_matches"):
        if m["unit_type"] != "document" and ((m["jaccard"] or 0) >= 0.5 or (m["cosine"] or 0) >= 0.9
                                             and (m["margin"] or 0) >= 1.2):
            parts[(m["doc_a"], m["doc_b"])].append(m)
    rows = []
    for r in read_table(run, "duplicates"):
        if keep is not None and not keep(r):
            continue
        a, b = sorted((r["doc_a"], r["doc_b"]))
        oa, ob = own.get(source[a], []), own.get(source[b], [])
        ms = parts.get((r["doc_a"], r["doc_b"]), [])
        cov = min(covered_chars([(m[f"{s}_start"], m[f"{s}_end"]) for m in ms]) / max(1, chars.get(r[f"doc_{s}"], 1))
                  for s in ("a", "b")) if ms else 0.0
        rows.append(dict(r, same=find(a) == find(b), near=near_duplicate_pages(oa, ob), shares=share_a_passage(oa, ob),
                         gold=expected.get((a, b)), has_doc="document" in r["granularity"], has_parts=bool(ms), pcov=cov))
    return gold, rows


def simulate(rows, gold, rule: str, duplicate_coverage: float = 0.8, extra=None, passage=None) -> dict:
    """`extra`: a predicate over a row that also decides a document duplicate (bench/site_alignment.py);
    `passage`: one that decides passage reuse of a row no other clause kept (bench/site_containment.py)."""
    decide, kept = Rule(rule), {}
    for r in rows:
        if r["has_doc"] and (decide(cosine=r["cosine"], jaccard=r["jaccard"], margin=r["margin"]) or extra and extra(r)):
            relation = "duplicate"
        elif r["has_parts"]:
            relation = "duplicate" if r["pcov"] >= duplicate_coverage else "passage"
        elif passage and passage(r):
            relation = "passage"
        else:
            continue
        kept[tuple(sorted((r["doc_a"], r["doc_b"])))] = (relation, r)
    v = collections.Counter()
    for relation, r in kept.values():
        if relation == "duplicate":
            v["dT" if r["same"] or r["near"] else "dF"] += 1
        else:
            v["pT" if r["gold"] == "transplant" or r["same"] or r["shares"] else "pF"] += 1
    recall = collections.defaultdict(lambda: [0, 0])
    for a, b, kind, _ in gold:
        category, x = CATEGORY[kind], kept.get(tuple(sorted((a, b))))
        recall[category][1] += 1
        recall[category][0] += bool(x and (category == "passage" or x[0] == "duplicate"))
    ratio = (lambda t, f: round(t / (t + f), 4) if t + f else None)
    return {"rule": rule, "document_pairs": v["dT"] + v["dF"], "document_precision": ratio(v["dT"], v["dF"]),
            "passage_pairs": v["pT"] + v["pF"], "passage_precision": ratio(v["pT"], v["pF"]),
            "recall": {k: f"{a}/{b}" for k, (a, b) in sorted(recall.items())}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="--out directory of a permissive `pipelines.evaluate site` run")
    parser.add_argument("--rule", action="append", default=[], help="score these rules instead of the grid")
    args = parser.parse_args(argv)
    gold, rows = judged_rows(args.base)
    if args.rule:
        for rule in args.rule:
            print(json.dumps(simulate(rows, gold, rule), ensure_ascii=False))
        return 0
    results = []
    for j1, c1, m1, j2, c2, m2 in itertools.product((0.3, 0.35, 0.4, 0.45, 0.5), (0.8, 0.85, 0.9, 0.93),
                                                    (1.0, 1.1, 1.15, 1.2), (0.6, 0.7, 0.8, 0.9, 1.01),
                                                    (0.85, 0.95, 1.01), (1.2, 1.5)):
        s = simulate(rows, gold, f"jaccard >= {j1} and cosine >= {c1} and margin >= {m1} or jaccard >= {j2} "
                                 f"or cosine >= {c2} and margin >= {m2}")
        found = sum(int(v.split("/")[0]) for k, v in s["recall"].items() if k != "passage")
        results.append((s["document_precision"] or 0, found, s))
    best = -1
    for precision, found, s in sorted(results, key=lambda x: (-x[0], -x[1])):
        if found > best:
            best = found
            print(json.dumps(dict(s, planted_document_pairs_found=found), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
