"""Threshold sweeps, best thresholds and rules, grouped folds."""
import numpy as np

from transforms.evaluation.calibrate import apply_rule, best_rule, best_threshold, group_folds, metrics, sweep


def test_sweep_counts_every_distinct_threshold():
    curve = sweep([0.9, 0.8, 0.8, 0.3, None], [True, True, False, False, True])
    assert [r["threshold"] for r in curve] == [0.9, 0.8, 0.3]
    assert [(r["tp"], r["fp"], r["fn"]) for r in curve] == [(1, 0, 2), (2, 1, 1), (2, 2, 1)]
    assert curve[0]["precision"] == 1.0 and curve[1]["recall"] == round(2 / 3, 4)


def test_best_threshold_sits_between_kept_and_dropped_scores_and_honours_a_precision_floor():
    scores = [0.95, 0.9, 0.7, 0.6, 0.5, 0.2]
    labels = [True, True, True, False, True, False]
    t, m = best_threshold(scores, labels)
    assert t == 0.35 and (m["tp"], m["fp"]) == (4, 1)  # keep 0.5 (F1 0.889 > 0.857 at 0.7); half-way to 0.2
    t, m = best_threshold(scores, labels, precision_floor=1.0)
    assert t == 0.65 and m["precision"] == 1.0 and m["recall"] == 0.75


def test_best_rule_finds_an_or_rule_when_each_signal_alone_misses_a_kind():
    # positives: paraphrases (high cosine, low Jaccard) and copies (high Jaccard, cosine just below)
    cos = [0.95, 0.93, 0.80, 0.82, 0.85, 0.60, 0.70, 0.88]
    jac = [0.05, 0.10, 0.90, 0.85, 0.10, 0.05, 0.30, 0.20]
    lab = [True, True, True, True, False, False, False, False]
    rule, m = best_rule(cos, jac, lab)
    assert m["form"] == "or" and m["f1"] == 1.0, (rule, m)
    assert rule.startswith("cosine >= 0.") and " or jaccard >= " in rule
    assert list(apply_rule("or", m["cosine_threshold"], m["jaccard_threshold"], cos, jac)) == lab
    only_cos, m_cos = best_rule(cos, jac, lab, forms=("cosine",))
    assert m_cos["f1"] < 1.0 and only_cos.startswith("cosine >= ")


def test_metrics_and_group_folds():
    assert metrics([True, False, True], [True, True, False]) == {
        "tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    folds = group_folds(["a", "b", "a", "c"])
    assert [list(test) for _, test in folds] == [[0, 2], [1], [3]]
    assert all(not set(tune) & set(test) for tune, test in folds)
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == [0, 1, 2, 3]
