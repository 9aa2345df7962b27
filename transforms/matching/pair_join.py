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
