"""Reading runs back: comparing two runs' cell values."""
from transforms.reporting.report import values_close


def test_values_close_allows_float_noise_only():
    evidence_a = '[{"unit_a": "d#p1", "cosine": 0.9999991}]'
    evidence_b = '[{"unit_a": "d#p1", "cosine": 0.9999999}]'
    assert values_close({"cosine": 0.8500001, "evidence": evidence_a, "members": ["a", "b"]},
                        {"cosine": 0.8500009, "evidence": evidence_b, "members": ("a", "b")})
    assert not values_close(0.85, 0.851)
    assert not values_close('[{"unit_a": "d#p1"}]', '[{"unit_a": "d#p2"}]')
    assert not values_close({"a": 1}, {"a": 1, "b": 2})
    assert not values_close(["a", "b"], ["a"])
    assert not values_close("g-1", "g-2") and values_close(None, None)
