"""Progress: counters on every runner, rate-limited lines with totals and estimates."""
import logging

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipelines.runner import OfflineDirectRunner
from transforms.reporting.progress import Progress, progress_line


def test_line_gives_count_total_rate_and_time_left():
    assert progress_line("embed", "units", 3200, 80.0, 12974, 1) == \
        "progress embed: 3,200 of 12,974 units (25%), 40.0/s, ~4 min left"
    assert progress_line("read", "documents", 500, 10.0) == "progress read: 500 documents, 50.0/s"
    assert progress_line("embed", "units", 1, 0.0, 10) == "progress embed: started (10 units in all)"


def test_a_slow_stage_gives_its_rate_per_minute():
    assert progress_line("embed", "groups", 3, 120.0, 12, 1) == \
        "progress embed: 3 of 12 groups (25%), 1.5/min, ~6 min left"


def test_line_of_one_of_several_workers_estimates_all_of_them():
    line = progress_line("embed", "units", 1000, 100.0, 8000, 2)
    assert "1,000 units in this worker, 10.0/s" in line
    assert "~2,000 of 8,000 across 2 workers, ~5 min left" in line  # (8000/2 - 1000) / 10 = 300 s
    assert "(8,000 in all)" in progress_line("embed", "units", 10, 1.0, 8000, 0)  # workers unknown


def test_progress_passes_elements_through_counts_and_reports(caplog):
    """In a pipeline: every element comes out unchanged, the counter has them all, and lines are
    written (first element at once, then by interval) with the side-input total."""
    caplog.set_level(logging.INFO, logger="transforms.reporting.progress")
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        items = p | beam.Create(list(range(50)))
        total = beam.pvalue.AsSingleton(items | "N" >> beam.combiners.Count.Globally())
        out = items | Progress("test", "items", total=total, interval_s=0.0001, local=False)
        assert_that(out, equal_to(list(range(50))))
    result = p.result
    counters = result.metrics().query()["counters"]
    assert [c.committed for c in counters if c.key.metric.name == "test_items"] == [50]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress test")]
    assert lines and lines[0] == "progress test: started (50 items in all)"
    assert any("of 50 items" in line for line in lines[1:])


def test_interval_zero_writes_no_line_but_counts(caplog):
    caplog.set_level(logging.INFO, logger="transforms.reporting.progress")
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        _ = p | beam.Create([1, 2, 3]) | Progress("quiet", "items", interval_s=0, local=False)
    assert not [r for r in caplog.records if r.getMessage().startswith("progress quiet")]
    counters = p.result.metrics().query()["counters"]
    assert [c.committed for c in counters if c.key.metric.name == "quiet_items"] == [3]
