import pytest

from transforms.matching.rules import Rule


def test_rule_expression_evaluates_like_the_issue_example():
    rule = Rule("jaccard >= 0.8 OR (cosine >= 0.92 AND jaccard >= 0.2)".replace("OR", "or").replace("AND", "and"))
    assert rule(cosine=0.5, jaccard=0.85)
    assert rule(cosine=0.95, jaccard=0.25)
    assert not rule(cosine=0.95, jaccard=0.1)
    assert not rule(cosine=None, jaccard=None)  # a missing score counts as 0
    assert Rule("0.5 <= cosine < 0.9")(cosine=0.7) and not Rule("not cosine > 0.3")(cosine=0.7)
    assert Rule("containment >= 0.3 and cosine >= 0.55")(cosine=0.6, jaccard=0.1, containment=0.8)
    assert not Rule("containment >= 0.3")(cosine=0.9, jaccard=0.9)


@pytest.mark.parametrize("bad", ["__import__('os').system('x')", "cosine.real > 1", "len(jaccard) > 0",
                                 "score > 0.5", "cosine >= 'a'", "cosine +", "cosine if 1 else 0"])
def test_rule_rejects_anything_but_the_whitelist(bad):
    with pytest.raises(ValueError):
        Rule(bad)
