"""Gold formats: docs + gold pairs with an anchor universe and groups; STS CSVs."""
import json

import pytest

from transforms.evaluation.gold import load_docs_gold, load_sts


def test_anchor_universe_groups_and_hard_negatives(tmp_path):
    docs = [{"id": "src1", "cat": "orig", "task": "a", "text": "s1"}, {"id": "src2", "cat": "orig", "task": "b", "text": "s2"},
            {"id": "ans1", "cat": "cut", "task": "a", "text": "x"}, {"id": "ans2", "cat": "non", "task": "a", "text": "y"},
            {"id": "ans3", "cat": "heavy", "task": "b", "text": "z"}]
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (tmp_path / "gold.tsv").write_text("id_a\tid_b\tlevel\nans1\tsrc1\tcut\nans3\tsrc2\theavy\n")
    data = load_docs_gold(str(tmp_path / "docs.jsonl"), str(tmp_path / "gold.tsv"), anchor=("cat", "orig"),
                          group_field="task", positive_kinds={"cut"})
    by_pair = dict(zip(data.pairs, zip(data.labels, data.kinds)))
    assert len(data.pairs) == 6  # 3 answers x 2 sources; answer-answer pairs are unlabelled
    assert by_pair[("ans1", "src1")] == (True, "cut")
    assert by_pair[("ans3", "src2")] == (False, "heavy (not counted positive)")
    assert by_pair[("ans2", "src1")] == (False, "hard_negative")  # same task, no reuse
    assert by_pair[("ans1", "src2")] == (False, "negative")
    (tmp_path / "bad.tsv").write_text("id_a\tid_b\tkind\nans1\tnope\tcut\n")
    with pytest.raises(ValueError, match="unknown document"):
        load_docs_gold(str(tmp_path / "docs.jsonl"), str(tmp_path / "bad.tsv"))


def test_sts_split_and_cutoff(tmp_path):
    (tmp_path / "t.csv").write_text('"Un gato duerme.","Un gato está durmiendo.",4.6\nA,B,1.0\n')
    (tmp_path / "d.csv").write_text('C,D,4.0\nE,F,3.99\n')
    data = load_sts(str(tmp_path / "t.csv"), str(tmp_path / "d.csv"), cutoff=4.0)
    assert data.split == ["tune", "tune", "test", "test"] and data.labels == [True, False, True, False]
    assert data.texts[data.pairs[0][1]] == "Un gato está durmiendo." and data.scores[3] == 3.99
