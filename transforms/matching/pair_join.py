"""Scoring pairs with per-unit features, as keyed joins (no worker holds all features).

    cosines = pairs | JoinPairScores(vectors_by_id, cosine)      # ((a, b), float)

`pairs` holds (a, b) tuples; `features` holds (id, feature). A pair whose side has no feature is
dropped (and counted), so a missing unit never fails the job.
"""
from __future__ import annotations

from typing import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics


class JoinPairScores(beam.PTransform):
    """(a, b) pairs + (id, feature) -> ((a, b), score(feature_a, feature_b))."""

    def __init__(self, features, score: Callable, namespace: str = "pair_join"):
        super().__init__()
        self.features = features
        self.score = score
        self.namespace = namespace

    def expand(self, pairs):
        score = self.score
        missing = Metrics.counter(self.namespace, "pairs_missing_feature")

        def attach_left(element):
            _, grouped = element
            if not grouped["f"]:
                missing.inc(len(grouped["pairs"]))
                return
            feature_a = grouped["f"][0]
            for pair in grouped["pairs"]:
                yield pair[1], (pair, feature_a)

        def score_right(element):
            _, grouped = element
            if not grouped["f"]:
                missing.inc(len(grouped["left"]))
                return
            feature_b = grouped["f"][0]
            for pair, feature_a in grouped["left"]:
                yield pair, score(feature_a, feature_b)

        by_left = pairs | "KeyByLeft" >> beam.Map(lambda p: (p[0], p))
        left = ({"f": self.features, "pairs": by_left} | "JoinLeft" >> beam.CoGroupByKey()
                | "AttachLeft" >> beam.FlatMap(attach_left))
        return ({"f": self.features, "left": left} | "JoinRight" >> beam.CoGroupByKey()
                | "ScoreRight" >> beam.FlatMap(score_right))


class DropRowsNaming(beam.PTransform):
    """Rows (dicts) + `flagged` ids -> the rows whose `ends` fields name none of the flagged ids.

    One keyed join per end, so no worker holds the flagged set; dropped rows are counted as
    `namespace`/`counter`. Used to void stored pairs of affected documents and matches of template
    frames.
    """

    def __init__(self, flagged, ends: tuple[str, ...] = ("doc_a", "doc_b"), namespace: str = "pair_join",
                 counter: str = "rows_dropped"):
        super().__init__()
        self.flagged, self.ends = flagged, ends
        self.namespace, self.counter = namespace, counter

    def expand(self, rows):
        dropped = Metrics.counter(self.namespace, self.counter)
        flagged = self.flagged | "KeyFlagged" >> beam.Map(lambda i: (i, True))

        def keep(element):
            _, grouped = element
            if grouped["flagged"]:
                dropped.inc(len(grouped["rows"]))
                return
            yield from grouped["rows"]

        for end in self.ends:
            rows = ({"rows": rows | f"By_{end}" >> beam.Map(lambda r, e=end: (r[e], r)), "flagged": flagged}
                    | f"Join_{end}" >> beam.CoGroupByKey() | f"Keep_{end}" >> beam.FlatMap(keep))
        return rows
