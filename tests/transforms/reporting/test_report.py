"""Reading runs back: comparing two runs' cell values."""
from transforms.reporting.report import _sources_line, values_close


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


def test_the_terminal_sums_many_sources_up_and_names_the_ones_that_do_not_reconcile():
    ok = {"records": 1, "processed": 1, "dead_lettered": 0, "reconciled": True}
    few = {f"f{i}.html": ok for i in range(3)}
    assert _sources_line(few) == few  # a few sources: as they are
    many = {f"f{i}.html": ok for i in range(127)}
    assert _sources_line(many) == ("127 sources, 127 records = 127 processed + 0 dead-lettered, 127 reconciled "
                                   "(per source in summary.json)")
    many["bad.jsonl"] = {"records": 5, "processed": 3, "dead_lettered": 1, "reconciled": False}
    line = _sources_line(many)
    assert line.startswith("128 sources, 132 records = 130 processed + 1 dead-lettered, 127 reconciled; NOT reconciled:")
    assert "bad.jsonl" in line and "f0.html" not in line
