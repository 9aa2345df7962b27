"""Progress of the long stages: counters for every runner, a rate-limited line for people.

    vectors | "EmbedProgress" >> Progress("embed", "units", total=AsSingleton(n_units), workers=2)

`Progress` passes every element through unchanged. It counts them in the Beam counter
`progress/<stage>_<noun>` (live in Dataflow's UI and in the job's metrics) and, at most once per
`interval_s` in each worker process (and at its first element), writes one line such as

    progress embed: 3,200 of 12,974 units (25%), 41.2/s, ~4 min left

In a local run (`local=True`) the line goes straight to the process's stderr, so it shows in the
terminal from the DirectRunner's worker subprocesses too (their log records travel to the runner as
protobuf dumps); elsewhere it is an ordinary INFO log record of the worker. With several local
workers each reports its own share: the line gives the worker's count and rate and the estimate for
all workers, which holds because the units are spread evenly (Embed deals them into groups by a hash).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from typing import Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

_LOG = logging.getLogger(__name__)
# One tally per step per process: the DoFn instances of one step share it.
_TALLIES: dict = {}
_LOCK = threading.Lock()


def _stderr_logger() -> logging.Logger:
    logger = logging.getLogger("dedup.progress")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s left"
    return f"~{seconds / 60:.0f} min left" if seconds < 5400 else f"~{seconds / 3600:.1f} h left"


def progress_line(stage: str, noun: str, done: int, elapsed_s: float, total: Optional[int] = None,
                  workers: int = 1) -> str:
    """The human line for `done` elements of this process after `elapsed_s` seconds.

    total: elements of the stage in all (None: unknown); workers: processes sharing them (0: unknown).
    """
    if elapsed_s <= 0:
        return f"progress {stage}: started" + (f" ({total:,} {noun} in all)" if total else "")
    rate = done / elapsed_s
    speed = f"{rate:.1f}/s" if rate >= 1 else f"{rate * 60:.1f}/min"  # an encode group takes seconds
    if workers == 1:
        if not total:
            return f"progress {stage}: {done:,} {noun}, {speed}"
        left = f", {_minutes(max(0, total - done) / rate)}" if rate else ""
        return f"progress {stage}: {done:,} of {total:,} {noun} ({done / total:.0%}), {speed}{left}"
    tail = ""
    if total and workers > 1:
        left = f", {_minutes(max(0.0, total / workers - done) / rate)}" if rate else ""
        tail = f" (~{min(total, done * workers):,} of {total:,} across {workers} workers{left})"
    elif total:
        tail = f" ({total:,} in all)"
    return f"progress {stage} [pid {os.getpid()}]: {done:,} {noun} in this worker, {speed}{tail}"


class _ProgressFn(beam.DoFn):
    def __init__(self, stage: str, noun: str, interval_s: float, workers: int, local: bool):
        self.stage, self.noun, self.interval_s, self.workers, self.local = stage, noun, interval_s, workers, local
        self.counter = Metrics.counter("progress", f"{stage}_{noun}")
        self.key = (uuid.uuid4().hex, stage, noun)  # one tally per step of one job, in each process

    def setup(self):
        self._log = _stderr_logger() if self.local else _LOG

    def process(self, element, total=None):
        self.counter.inc()
        if self.interval_s > 0:
            now = time.monotonic()
            with _LOCK:
                # The first element of a stage in this process is reported at once (the stage started).
                tally = _TALLIES.setdefault(self.key, {"n": 0, "t0": now, "last": None})
                tally["n"] += 1
                due = tally["last"] is None or now - tally["last"] >= self.interval_s
                if due:
                    tally["last"] = now
                    done, elapsed = tally["n"], now - tally["t0"]
            if due:
                self._log.info(progress_line(self.stage, self.noun, done, elapsed, total, self.workers))
        yield element


class Progress(beam.PTransform):
    """PCollection[T] -> the same PCollection[T]; counts it and reports progress (see the module).

    total: an AsSingleton side input with the stage's element count, or None; workers: how many
    processes share the stage (1 in-process, N for local multi_processing, 0 when unknown);
    interval_s: seconds between two lines of one process (0: counters only).
    """

    def __init__(self, stage: str, noun: str, *, total=None, workers: int = 1, interval_s: float = 10.0,
                 local: bool = True):
        super().__init__()
        self.stage, self.noun, self.total = stage, noun, total
        self.workers, self.interval_s, self.local = workers, interval_s, local

    def dofn(self) -> beam.DoFn:
        """The counting DoFn itself (element, total=None) -> element, for a step that must count inside
        another one (transforms/io/bundles.py); `total` then comes as that step's side input."""
        return _ProgressFn(self.stage, self.noun, self.interval_s, self.workers, self.local)

    def expand(self, pcoll):
        fn = self.dofn()
        if self.total is None:
            return pcoll | "Count" >> beam.ParDo(fn)
        return pcoll | "Count" >> beam.ParDo(fn, total=self.total)
