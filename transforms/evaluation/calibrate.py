"""Threshold calibration from labelled pairs: sweeps, best thresholds and rules, grouped splits.

    curve = sweep(scores, labels)                         # one row per distinct threshold
    t, m = best_threshold(scores, labels, precision_floor=0.95)
    rule, m = best_rule(cosines, jaccards, labels)        # 'cosine >= 0.83 or jaccard >= 0.11'
    folds = group_folds(groups)                           # leave-one-group-out splits

Scores are floats (None: not computable, never predicted positive). A threshold t predicts
`score >= t`; chosen thresholds sit half-way between the last kept and the first dropped score, so a
held-out split is not judged on a boundary fitted to one example. Rules use the same expression
language as the job's `--rule`, so a recommended rule can be pasted into a run.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

RULE_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)


def _arrays(scores, labels):
    s = np.array([-np.inf if x is None else float(x) for x in scores], dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    return s, y


def metrics(predicted: Sequence[bool], labels: Sequence[bool]) -> dict:
    """Pair-level confusion counts, precision, recall and F1 (precision 1.0 when nothing is predicted)."""
    p, y = np.asarray(predicted, dtype=bool), np.asarray(labels, dtype=bool)
    tp, fp, fn = int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4)}


def sweep(scores, labels) -> list[dict]:
    """Scores and labels -> [{threshold, tp, fp, fn, precision, recall, f1}] for every distinct score,
    highest threshold first (the PR curve)."""
    s, y = _arrays(scores, labels)
    finite = np.isfinite(s)
    order = np.argsort(-s[finite], kind="stable")
    ss, yy = s[finite][order], y[finite][order]
    positives = int(y.sum())
    tps, fps = np.cumsum(yy), np.cumsum(~yy)
    rows = []
    last = np.r_[ss[1:] != ss[:-1], True] if ss.size else np.array([], dtype=bool)
    for i in np.nonzero(last)[0]:
        tp, fp = int(tps[i]), int(fps[i])
        precision = tp / (tp + fp)
        recall = tp / positives if positives else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": float(ss[i]), "tp": tp, "fp": fp, "fn": positives - tp,
                     "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)})
    return rows


def best_threshold(scores, labels, precision_floor: Optional[float] = None) -> tuple[float, dict]:
    """The threshold that maximises F1 (or recall subject to precision >= floor); ties go to the
    higher threshold. Returned half-way to the next lower distinct score."""
    curve = sweep(scores, labels)
    if not curve:
        return 1.0, metrics([False] * len(labels), labels)
    if precision_floor is not None:
        ok = [r for r in curve if r["precision"] >= precision_floor]
        pick = max(ok, key=lambda r: (r["recall"], r["threshold"])) if ok else curve[0]
    else:
        pick = max(curve, key=lambda r: (r["f1"], r["threshold"]))
    i = curve.index(pick)
    lower = curve[i + 1]["threshold"] if i + 1 < len(curve) else pick["threshold"] - 0.01
    t = round((pick["threshold"] + lower) / 2, 4)
    s, y = _arrays(scores, labels)
    return t, metrics(s >= t, y)


def rule_text(form: str, cos_t: float, jac_t: float) -> str:
    if form == "cosine":
        return f"cosine >= {cos_t:g}"
    if form == "jaccard":
        return f"jaccard >= {jac_t:g}"
    return f"cosine >= {cos_t:g} {form} jaccard >= {jac_t:g}"


def apply_rule(form: str, cos_t: float, jac_t: float, cosines, jaccards) -> np.ndarray:
    c, _ = _arrays(cosines, [False] * len(cosines))
    j, _ = _arrays(jaccards, [False] * len(jaccards))
    if form == "cosine":
        return c >= cos_t
    if form == "jaccard":
        return j >= jac_t
    return (c >= cos_t) | (j >= jac_t) if form == "or" else (c >= cos_t) & (j >= jac_t)


def best_rule(cosines, jaccards, labels, precision_floor: Optional[float] = None,
              forms: Sequence[str] = ("cosine", "jaccard", "or", "and")) -> tuple[str, dict]:
    """Best decision rule over the two signals on a 0.01 grid: one signal alone, either (or) or
    both (and). Ties prefer simpler forms, then higher thresholds. Returns (rule text, metrics)."""
    c, y = _arrays(cosines, labels)
    j, _ = _arrays(jaccards, labels)
    grid = RULE_GRID
    cos_hits = c[None, :] >= grid[:, None]  # [threshold, pair]
    jac_hits = j[None, :] >= grid[:, None]
    best_key, best = None, None
    positives = max(1, int(y.sum()))
    for rank, form in enumerate(forms):
        if form == "cosine":
            pred = cos_hits[:, None, :]
        elif form == "jaccard":
            pred = jac_hits[None, :, :]
        elif form == "or":
            pred = cos_hits[:, None, :] | jac_hits[None, :, :]
        else:
            pred = cos_hits[:, None, :] & jac_hits[None, :, :]
        tp, fp = (pred & y).sum(-1), (pred & ~y).sum(-1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        recall = tp / positives
        if precision_floor is not None:
            objective = np.where(precision >= precision_floor, recall, -1.0)
        else:
            objective = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        flipped = objective[::-1, ::-1]  # argmax takes the first maximum: prefer the higher thresholds
        fi, fj = np.unravel_index(np.argmax(flipped), flipped.shape)
        ci, ji = objective.shape[0] - 1 - fi, objective.shape[1] - 1 - fj
        cos_t = float(grid[ci]) if objective.shape[0] > 1 else 0.0
        jac_t = float(grid[ji]) if objective.shape[1] > 1 else 0.0
        key = (round(float(objective[ci, ji]), 6), -rank)
        if best_key is None or key > best_key:
            best_key, best = key, (form, cos_t, jac_t)
    form, cos_t, jac_t = best
    return rule_text(form, cos_t, jac_t), {**metrics(apply_rule(form, cos_t, jac_t, cosines, jaccards), y),
                                           "form": form, "cosine_threshold": cos_t, "jaccard_threshold": jac_t}


def group_folds(groups: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-group-out splits: [(tune indices, held-out indices)], one per distinct group."""
    g = np.asarray(groups)
    return [(np.nonzero(g != value)[0], np.nonzero(g == value)[0]) for value in sorted(set(groups))]
