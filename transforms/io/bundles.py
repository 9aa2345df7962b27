"""Bundles of one key: a stage's output in flight stays one key's, whatever the runner's partitions.

Flink's batch runner (Beam's job server 2.62) runs a fused SDK stage as one bundle per partition,
and takes a bundle's output from the SDK worker only once the worker has finished the whole bundle:
until then it waits in the TaskManager's heap. A stage whose output grows with its input (splitting
documents into signed units: ~58 KB per page) then needs a heap that grows with the corpus. The
same runner runs a *stateful* stage as one bundle per key (a sorted group-reduce, spilled to disk
by Flink). `OneBundlePerKey` is a stateful pass-through: the stage that starts with it, and every
transform fused after it, run one key at a time there. Elsewhere it is a keyed shuffle and nothing
more: the elements, and so the results, are the same on every runner.

    docs | "AwaitTemplates" >> ShardedBundles(key=lambda d: d["id"]) | "SplitUnits" >> SplitUnits(...)
    texts | beam.GroupByKey() | OneBundlePerKey() | beam.Map(encode_group)
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Tuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

# Shards of a ShardedBundles: ~20 pages a bundle at 20,000 pages, ~1,000 at a million; each bundle
# costs the SDK worker two small round trips on Flink (one for the elements, one for timers).
SHARDS = 1024


def stable_shard(key: str, shards: int = SHARDS) -> int:
    """A shard number in [0, shards) from a string key, the same in every process and run."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % max(1, shards)


class _PassThrough(beam.DoFn):
    """(key, value) -> (key, value). The state cell is declared and never used: it makes the DoFn
    stateful, which is what makes a runner hand it (and its fused consumers) one key at a time."""

    KEYED = ReadModifyWriteStateSpec("keyed", BooleanCoder())

    def process(self, element, keyed=beam.DoFn.StateParam(KEYED)):
        yield element


class OneBundlePerKey(beam.PTransform):
    """PCollection[(K, V)] -> the same PCollection[(K, V)], the key's elements together; on Flink's
    batch runner the transforms after it run one bundle per key. K needs a deterministic coder."""

    def expand(self, keyed):
        return keyed | "OneKeyPerBundle" >> beam.ParDo(_PassThrough())


class ShardedBundles(beam.PTransform):
    """PCollection[T] -> the same PCollection[T], dealt into `shards` shards by a stable hash of
    `key(element)` (a str) and handed on one shard per bundle (OneBundlePerKey). In place of a
    Reshuffle before a stage whose output grows with its input."""

    def __init__(self, key: Callable[[Any], str], shards: int = SHARDS):
        super().__init__()
        self.key, self.shards = key, shards

    def expand(self, pcoll):
        key, shards = self.key, self.shards
        return (pcoll
                | "DealIntoShards" >> beam.Map(lambda e: (stable_shard(key(e), shards), e)
                                               ).with_output_types(Tuple[int, Any])
                | "OneShardPerBundle" >> OneBundlePerKey()
                | "DropShard" >> beam.Values())
