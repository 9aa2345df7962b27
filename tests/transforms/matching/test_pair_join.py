"""Keyed joins over pair rows: dropping the rows that name a flagged id."""
import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.matching.pair_join import DropRowsNaming


def test_rows_naming_a_flagged_id_at_either_end_are_dropped_and_counted_once():
    rows = [{"doc_a": "a", "doc_b": "b"}, {"doc_a": "b", "doc_b": "c"}, {"doc_a": "c", "doc_b": "d"},
            {"doc_a": "x", "doc_b": "b"}, {"doc_a": "b", "doc_b": "b2"}]
    p = TestPipeline()
    kept = (p | "Rows" >> beam.Create(rows)
            | DropRowsNaming(p | "Flagged" >> beam.Create(["b", "b", "zz"]), namespace="t", counter="gone"))
    assert_that(kept | beam.Map(lambda r: (r["doc_a"], r["doc_b"])), equal_to([("c", "d")]))
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace("t").with_name("gone"))["counters"]
    assert sum(c.committed for c in counters) == 4  # every row naming b once, though b is flagged twice


def test_only_the_named_ends_are_looked_at_and_nothing_flagged_keeps_everything():
    rows = [{"doc_a": "a", "doc_b": "b", "unit": "u1"}, {"doc_a": "c", "doc_b": "d", "unit": "u2"}]
    with TestPipeline() as p:
        by_unit = (p | "Rows" >> beam.Create(rows)
                   | "ByUnit" >> DropRowsNaming(p | "Flagged" >> beam.Create(["a", "u2"]), ends=("unit",)))
        assert_that(by_unit | "Units" >> beam.Map(lambda r: r["unit"]), equal_to(["u1"]), label="ByUnitOnly")
        untouched = (p | "Rows2" >> beam.Create(rows)
                     | "None" >> DropRowsNaming(p | "NoFlags" >> beam.Create([])))
        assert_that(untouched | "Pairs" >> beam.Map(lambda r: r["doc_a"]), equal_to(["a", "c"]), label="AllKept")
