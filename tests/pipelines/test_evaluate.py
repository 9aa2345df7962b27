from pipelines.evaluate import read_gold, score_pairs


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
