"""Evaluation: score a run's duplicates table, or calibrate thresholds on labelled pairs.

    # a run's table against gold pairs (pair level, recall per kind)
    python -m pipelines.evaluate --duplicates out/demo/duplicates --gold demo/gold.tsv
    # calibrate: both signals per granularity, swept on one split and reported on another
    python -m pipelines.evaluate calibrate --docs docs.jsonl --gold gold_pairs.tsv \
        --anchor category=orig --group_field task --positive_kinds cut,light,heavy --out eval/clough
    python -m pipelines.evaluate calibrate --sts_tune train.csv --sts_test dev.csv --cutoff 4 --out eval/sts

Gold TSV: a header `id_a  id_b  kind  [is_duplicate]`; rows with is_duplicate 0 are labelled
negatives (e.g. same topic, no reuse). See transforms/evaluation/gold.py for the calibration formats.

Calibration holds thresholds out: with a group field, leave-one-group-out (thresholds chosen on the
other groups, every pair judged once by a fold that never saw its group); with STS files, chosen on
the tune file and reported on the test file. It reports cosine alone, Jaccard alone and the combined
rule (best of: one signal, either, both) per granularity, the recommended thresholds (chosen on all
tuning data), recall per kind and hard negatives kept, Spearman for graded gold; and writes
report.json, sweep CSVs, PR curves and score histograms (PNG) under --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict

from transforms.evaluation.gold import kind_column
from transforms.records import ordered_pair
from transforms.reporting.report import read_duplicates


def read_gold(path: str) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """Gold TSV (id_a, id_b, kind or level[, is_duplicate]) -> (positives, labelled negatives), each
    {(id_a, id_b) ordered: kind}."""
    positives, negatives = {}, {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        kind = kind_column(reader.fieldnames or [])
        for row in reader:
            target = negatives if str(row.get("is_duplicate", "1")).strip() == "0" else positives
            target[ordered_pair(row["id_a"], row["id_b"])] = row[kind]
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


SIGNALS = ("cosine", "jaccard", "combined")


def _fit(signal, cos, jac, labels, floor):
    """-> (rule text, predict(cos, jac) -> bool array)."""
    from transforms.evaluation.calibrate import apply_rule, best_rule, best_threshold

    if signal == "combined":
        rule, m = best_rule(cos, jac, labels, precision_floor=floor)
        form, ct, jt = m["form"], m["cosine_threshold"], m["jaccard_threshold"]
        return rule, lambda c, j: apply_rule(form, ct, jt, c, j)
    t, _ = best_threshold(cos if signal == "cosine" else jac, labels, precision_floor=floor)
    return f"{signal} >= {t:g}", lambda c, j: apply_rule(signal, t, t, c, j)


def calibrate(data, scores: dict, precision_floor=None) -> dict:
    """LabelledPairs + score_document_pairs output -> the calibration report (held-out metrics,
    recommended rules, recall per kind, hard negatives kept, Spearman)."""
    import numpy as np

    from transforms.evaluation.calibrate import group_folds, metrics

    labels = np.asarray(data.labels, dtype=bool)
    kinds = np.asarray(data.kinds)
    if data.split:
        split = np.asarray(data.split)
        folds = [(np.nonzero(split == "tune")[0], np.nonzero(split == "test")[0])]
        tune_all = folds[0][0]
    else:
        folds = group_folds(data.groups) if any(data.groups) else [(np.arange(len(labels)), np.arange(len(labels)))]
        tune_all = np.arange(len(labels))
    held_out = np.unique(np.concatenate([t for _, t in folds]))
    report = {"data": data.summary(), "evaluation": "tune/test files" if data.split else
              (f"leave-one-group-out ({len(folds)} folds)" if len(folds) > 1 else "same data (optimistic)"),
              "precision_floor": precision_floor, "granularities": {}}
    for g, sc in scores.items():
        cos = np.array([np.nan if x is None else x for x in sc["cosine"]], dtype=float)
        jac = np.array([np.nan if x is None else x for x in sc["jaccard"]], dtype=float)
        as_list = lambda a, idx: [None if np.isnan(v) else float(v) for v in a[idx]]  # noqa: E731
        out = {}
        for signal in SIGNALS:
            predicted = np.zeros(len(labels), dtype=bool)
            fold_rules = []
            for tune, test in folds:
                rule, predict = _fit(signal, as_list(cos, tune), as_list(jac, tune), labels[tune], precision_floor)
                predicted[test] = predict(as_list(cos, test), as_list(jac, test))
                fold_rules.append(rule)
            recommended, _ = _fit(signal, as_list(cos, tune_all), as_list(jac, tune_all), labels[tune_all],
                                  precision_floor)
            m = metrics(predicted[held_out], labels[held_out])
            by_kind = {}
            for kind in sorted(set(kinds[held_out])):
                idx = held_out[kinds[held_out] == kind]
                by_kind[kind] = {"pairs": int(idx.size), "predicted_duplicate": int(predicted[idx].sum())}
            out[signal] = {**m, "recommended_rule": recommended, "fold_rules": fold_rules, "by_kind": by_kind}
        if data.scores:
            from scipy.stats import spearmanr

            graded = np.asarray(data.scores)
            for signal, values in (("cosine", cos), ("jaccard", jac)):
                ok = held_out[~np.isnan(values[held_out])]
                out[signal]["spearman"] = round(float(spearmanr(values[ok], graded[ok]).statistic), 4)
        report["granularities"][g] = out
    if len(scores) > 1:
        report["combined_across_granularities"] = _across(scores, labels, kinds, folds, tune_all, held_out,
                                                          precision_floor)
    return report


def _across(scores, labels, kinds, folds, tune_all, held_out, floor) -> dict:
    """The combined rule with each signal taken at its own granularity (e.g. document Jaccard or
    sentence cosine): granularities and thresholds both chosen on the tuning side of every fold."""
    import numpy as np

    from transforms.evaluation.calibrate import apply_rule, best_rule, metrics

    options = [(gc, gj) for gc in scores for gj in scores]

    def fit(idx):
        best = None
        for gc, gj in options:
            c = [scores[gc]["cosine"][i] for i in idx]
            j = [scores[gj]["jaccard"][i] for i in idx]
            rule, m = best_rule(c, j, labels[idx], precision_floor=floor)
            key = m["recall"] if floor is not None else m["f1"]
            if best is None or key > best[0]:
                best = (key, gc, gj, rule, m)
        return best[1:]

    predicted = np.zeros(len(labels), dtype=bool)
    fold_rules = []
    for tune, test in folds:
        gc, gj, rule, m = fit(tune)
        predicted[test] = apply_rule(m["form"], m["cosine_threshold"], m["jaccard_threshold"],
                                     [scores[gc]["cosine"][i] for i in test], [scores[gj]["jaccard"][i] for i in test])
        fold_rules.append(f"{rule} [cosine@{gc}, jaccard@{gj}]")
    gc, gj, rule, _ = fit(tune_all)
    by_kind = {kind: {"pairs": int(idx.size), "predicted_duplicate": int(predicted[idx].sum())}
               for kind in sorted(set(kinds[held_out])) for idx in [held_out[kinds[held_out] == kind]]}
    return {**metrics(predicted[held_out], labels[held_out]), "recommended_rule": rule,
            "cosine_granularity": gc, "jaccard_granularity": gj, "fold_rules": fold_rules, "by_kind": by_kind}


def write_calibration(report: dict, data, scores: dict, out_dir: str) -> list[str]:
    """report.json, sweep_<granularity>_<signal>.csv, pr_curves.png and histograms.png under out_dir."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from transforms.evaluation.calibrate import sweep

    os.makedirs(out_dir, exist_ok=True)
    written = [os.path.join(out_dir, "report.json")]
    with open(written[0], "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    labels = np.asarray(data.labels, dtype=bool)
    grans = list(scores)
    fig_pr, axes_pr = plt.subplots(1, len(grans), figsize=(4.2 * len(grans), 3.6), squeeze=False)
    fig_h, axes_h = plt.subplots(2, len(grans), figsize=(4.2 * len(grans), 5.6), squeeze=False)
    for col, g in enumerate(grans):
        for row, signal in enumerate(("cosine", "jaccard")):
            values = scores[g][signal]
            curve = sweep(values, labels)
            path = os.path.join(out_dir, f"sweep_{g}_{signal}.csv")
            with open(path, "w", newline="", encoding="utf-8") as handle:
                w = csv.DictWriter(handle, fieldnames=["threshold", "tp", "fp", "fn", "precision", "recall", "f1"])
                w.writeheader()
                w.writerows(curve)
            written.append(path)
            axes_pr[0][col].plot([r["recall"] for r in curve], [r["precision"] for r in curve], label=signal)
            arr = np.array([np.nan if v is None else v for v in values], dtype=float)
            ax = axes_h[row][col]
            bins = np.linspace(0, 1, 41)
            ax.hist(arr[~labels & ~np.isnan(arr)], bins=bins, alpha=0.6, label="negatives", color="#7a8ca8")
            ax.hist(arr[labels & ~np.isnan(arr)], bins=bins, alpha=0.6, label="positives", color="#d9534f")
            ax.set_title(f"{g} {signal}")
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax = axes_pr[0][col]
        ax.set_title(f"{g}: precision-recall")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    for fig, name in ((fig_pr, "pr_curves.png"), (fig_h, "histograms.png")):
        fig.tight_layout()
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def print_calibration(report: dict) -> None:
    d = report["data"]
    if "test_pairs" in d:
        print(f"\n{d['name']}: tuned on {d['tune_pairs']} pairs, reported on {d['test_pairs']} "
              f"({d['test_positives']} positives)")
    else:
        print(f"\n{d['name']}: {d['pairs']} labelled pairs, {d['positives']} positives; held out by {report['evaluation']}")
    print(f"{'granularity':<11} {'signal':<9} {'P':>6} {'R':>6} {'F1':>6}  {'hard neg. kept':>14}  recommended rule")
    for g, out in report["granularities"].items():
        for signal in SIGNALS:
            m = out[signal]
            hard = m["by_kind"].get("hard_negative", {}).get("predicted_duplicate", "-")
            extra = f"  Spearman {m['spearman']:.3f}" if "spearman" in m else ""
            print(f"{g:<11} {signal:<9} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}  {hard!s:>14}  "
                  f"{m['recommended_rule']}{extra}")
    m = report.get("combined_across_granularities")
    if m:
        hard = m["by_kind"].get("hard_negative", {}).get("predicted_duplicate", "-")
        print(f"{'across':<11} {'combined':<9} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}  {hard!s:>14}  "
              f"{m['recommended_rule']}  (cosine@{m['cosine_granularity']}, jaccard@{m['jaccard_granularity']})")


def calibrate_main(argv) -> int:
    from transforms.signals.models import DEFAULT_MODEL, load_encoder
    from transforms.evaluation.gold import load_docs_gold, load_sts
    from transforms.matching.pair_scores import score_document_pairs

    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate calibrate",
                                     description="Calibrate thresholds on labelled pairs (held out).")
    parser.add_argument("--docs", help="docs.jsonl ({id, text, ...})")
    parser.add_argument("--gold", help="gold pairs TSV (id_a, id_b, kind|level, [is_duplicate])")
    parser.add_argument("--anchor", default="", help="FIELD=VALUE: label only pairs of an anchor document with a "
                                                     "non-anchor one (e.g. category=orig)")
    parser.add_argument("--group_field", default="", help="document field for leave-one-group-out splits")
    parser.add_argument("--positive_kinds", default="", help="gold kinds counted as duplicates (default: all)")
    parser.add_argument("--sts_tune", help="STS CSV (sentence1,sentence2,score) to choose thresholds on")
    parser.add_argument("--sts_test", help="STS CSV to report on")
    parser.add_argument("--cutoff", type=float, default=4.0, help="STS score counted as duplicate (>=)")
    parser.add_argument("--limit_tune", type=int, default=None, help="use only the first N tune pairs")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model (as the job's --model)")
    parser.add_argument("--embed_backend", default="auto", choices=("auto", "torch", "openvino"),
                        help="as the job's --embed_backend")
    parser.add_argument("--embed_precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="as the job's --embed_precision")
    parser.add_argument("--granularities", default="document,sentence",
                        help="unit types scored (document, paragraph, sentence)")
    parser.add_argument("--precision_floor", type=float, default=None,
                        help="choose thresholds for the best recall at this precision, instead of best F1")
    parser.add_argument("--name", default="")
    parser.add_argument("--out", required=True, help="directory for report.json, CSVs and PNGs")
    args = parser.parse_args(argv)
    if args.sts_tune and args.sts_test:
        data = load_sts(args.sts_tune, args.sts_test, cutoff=args.cutoff, limit_tune=args.limit_tune,
                        name=args.name or args.sts_test)
        grans = ["document"]
    elif args.docs and args.gold:
        anchor = tuple(args.anchor.split("=", 1)) if args.anchor else None
        kinds = {k.strip() for k in args.positive_kinds.split(",") if k.strip()} or None
        data = load_docs_gold(args.docs, args.gold, anchor=anchor, group_field=args.group_field or None,
                              positive_kinds=kinds, name=args.name or args.docs)
        grans = [g.strip() for g in args.granularities.split(",") if g.strip()]
    else:
        parser.error("give --docs and --gold, or --sts_tune and --sts_test")
    encoder = load_encoder(args.model, precision=args.embed_precision, backend=args.embed_backend)
    scores = score_document_pairs(data.texts, data.pairs, encoder, granularities=grans)
    report = calibrate(data, scores, args.precision_floor)
    report["model"] = args.model
    report["embedding"] = f"{getattr(encoder, 'dedup_backend', 'torch')} {getattr(encoder, 'dedup_precision', 'fp32')}"
    write_calibration(report, data, scores, args.out)
    print_calibration(report)
    print(f"written: {args.out}/report.json, sweep_*.csv, pr_curves.png, histograms.png")
    return 0


def site_main(argv) -> int:
    """Site precision: a real documentation site with planted copies, run through the job, scored."""
    import shlex
    import subprocess

    from transforms.reporting.report import read_table
    from transforms.evaluation.site_corpus import SITES, plant_copies, score_site_run, site_pages

    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate site", description=site_main.__doc__)
    parser.add_argument("--package", required=True, choices=sorted(SITES), help="Debian package of the site")
    parser.add_argument("--pages", type=int, default=300, help="original pages, spread over the site")
    parser.add_argument("--per_kind", type=int, default=6, help="originals copied per edit type")
    parser.add_argument("--multi", type=int, default=3, help="originals copied three times each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--input_kind", default="text", choices=("text", "html"),
                        help="text: pages as a crawler extracts them, navigation included; html: as shipped")
    parser.add_argument("--cache", default="out/sites", help="where Debian packages are downloaded and unpacked")
    parser.add_argument("--out", required=True, help="directory for the corpus, the run and report.json")
    parser.add_argument("--job_args", default="--vector_store memory --report_top 10",
                        help="extra arguments of the job (quoted as one string)")
    parser.add_argument("--score_only", action="store_true", help="score the run already under --out again")
    args = parser.parse_args(argv)
    pages = site_pages(args.package, args.cache, limit=args.pages)
    docs, gold = plant_copies(pages, seed=args.seed, per_kind=args.per_kind, multi=args.multi,
                              html=args.input_kind == "html")
    corpus = os.path.join(args.out, "corpus")
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, "docs.jsonl"), "w", encoding="utf-8") as handle:
        for d in docs:
            handle.write(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n")
    with open(os.path.join(corpus, "gold.tsv"), "w", encoding="utf-8") as handle:
        handle.write("id_a\tid_b\tkind\tis_duplicate\n")
        handle.writelines("\t".join(map(str, row)) + "\n" for row in gold)
    run_dir = os.path.join(args.out, "run")
    cmd = [sys.executable, "-m", "pipelines.dedup", "--input", os.path.join(corpus, "docs.jsonl"),
           "--output", run_dir, *shlex.split(args.job_args)]
    print(f"{len(pages)} pages of {args.package} + {len(docs) - len(pages)} planted copies; running: {shlex.join(cmd)}",
          flush=True)
    if not args.score_only:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    report = score_site_run(read_table(run_dir, "duplicates"), docs, gold, read_table(run_dir, "groups"))
    report.update(package=args.package, input_kind=args.input_kind, seed=args.seed, job_args=args.job_args,
                  templates=len(read_table(run_dir, "templates")))
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
    print(f"{args.package} ({args.input_kind}): {report['reported_pairs']} pairs reported; document pairs "
          f"{report['document_pairs']} precision {report['document_precision']}; passage pairs "
          f"{report['passage_pairs']} precision {report['passage_precision']}; largest group "
          f"{report['largest_group']} (planted {report['largest_planted_group']}); {report['templates']} template paragraphs")
    for category, r in report["recall"].items():
        print(f"  {category:<14} recall {r['recall']:.3f} ({r['found']}/{r['gold']})")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "site":
        return site_main(argv[1:])
    if argv and argv[0] == "calibrate":
        return calibrate_main(argv[1:])
    if argv and argv[0] == "perturb":
        from transforms.evaluation.perturb import main as perturb_main

        return perturb_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duplicates", required=True, help="duplicates/ directory (Parquet) of a run")
    parser.add_argument("--gold", required=True, help="gold pairs TSV (id_a, id_b, kind)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--only_with", default="",
                        help="score only pairs with a document whose id starts with this (gold that labels "
                             "pairs with a source only, e.g. Clough-Stevenson's orig_: every other such pair is false)")
    parser.add_argument("--recall_only", action="store_true",
                        help="print recall per kind only (perturbation suites: the corpus's own duplicates "
                             "are unlabelled, so precision is not meaningful)")
    args = parser.parse_args(argv)
    found = {ordered_pair(r["doc_a"], r["doc_b"]) for r in read_duplicates(args.duplicates)
             if not args.only_with or r["doc_a"].startswith(args.only_with) or r["doc_b"].startswith(args.only_with)}
    positives, negatives = read_gold(args.gold)
    scores = score_pairs(found, positives, negatives)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    if args.recall_only:
        print(f"\nagainst {args.gold}: recall {scores['recall']:.3f} ({scores['true_positives']} of {scores['gold']} "
              f"gold pairs; labelled negatives found: {len(scores['labelled_negatives_found'])})")
    else:
        print(f"\nagainst {args.gold}: precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  "
              f"F1 {scores['f1']:.3f}  ({scores['true_positives']} of {scores['gold']} gold pairs, "
              f"{scores['found']} found)")
    for kind, s in scores["recall_by_kind"].items():
        print(f"  {kind:<18} recall {s['recall']:.2f} ({s['found']}/{s['of']})")
    if scores["false_positives"] and not args.recall_only:
        print("  false positives: " + ", ".join(f"{a}~{b}" for a, b in scores["false_positives"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
