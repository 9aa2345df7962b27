"""Bundles of one key: a stage's output in flight stays one key's, whatever the runner's partitions.

Flink's batch runner (Beam's job server 2.62) runs a fused SDK stage as one bundle per partition,
and takes a bundle's output from the SDK worker only once the worker has finished the whole bundle:
until then it waits in the TaskManager's heap. A stage whose output grows with its input (splitting
documents into signed units: ~58 KB per page) then needs a heap that grows with the corpus. The
same runner runs a *stateful* stage as one bundle per key (a sorted group-reduce, spilled to disk
by Flink). `OneBundlePerKey` is a stateful step: the stage that starts with it, and every transform
fused after it, run one key at a time there. A transform that reads a side input never fuses into
a stage (it starts a whole-partition stage of its own), so such a step is done by the stateful step
itself (`fn` / `dofn` with keyword side inputs; `gates`: side inputs only waited for). Elsewhere it
is a keyed shuffle and nothing more: the elements, and so the results, are the same on every runner.

    docs | ShardedBundles(key=lambda d: d["id"], fn=split, templates=beam.pvalue.AsDict(t))
    texts | beam.GroupByKey() | OneBundlePerKey() | beam.Map(encode_group)
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Optional, Tuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder
from apache_beam.transforms.sideinputs import SIDE_INPUT_PREFIX
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

# Shards of a ShardedBundles: ~20 pages a bundle at 20,000 pages, ~1,000 at a million; each bundle
# costs the SDK worker two small round trips on Flink (one for the elements, one for timers).
SHARDS = 1024


def stable_shard(key: str, shards: int = SHARDS) -> int:
    """A shard number in [0, shards) from a string key, the same in every process and run."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % max(1, shards)


class _OneKeyFn(beam.DoFn):
    """(key, value) -> fn(value, **side inputs), dofn.process(value, **side inputs), or the value
    itself (the (key, value) with keep_key). The state cell is declared and never used: it makes the
    DoFn stateful, which is what makes a runner hand it one key at a time. Side inputs named in
    `gates` only hold it back until they are ready; they are not passed on."""

    KEYED = ReadModifyWriteStateSpec("keyed", BooleanCoder())

    def __init__(self, fn: Optional[Callable] = None, dofn: Optional[beam.DoFn] = None, keep_key: bool = False,
                 gates: tuple = ()):
        self.fn, self.dofn, self.keep_key, self.gates = fn, dofn, keep_key, tuple(gates)

    def setup(self):
        if self.dofn is not None:
            self.dofn.setup()

    def start_bundle(self):
        if self.dofn is not None:
            self.dofn.start_bundle()

    def process(self, element, keyed=beam.DoFn.StateParam(KEYED), **side):
        for gate in self.gates:
            side.pop(gate, None)
        value = element if self.keep_key else element[1]
        if self.fn is not None:
            yield from self.fn(value, **side)
        elif self.dofn is not None:
            yield from self.dofn.process(value, **side) or ()
        else:
            yield value

    def finish_bundle(self):
        if self.dofn is not None:
            return self.dofn.finish_bundle()

    def teardown(self):
        if self.dofn is not None:
            self.dofn.teardown()


class _StatefulParDo(beam.ParDo):
    """beam.ParDo for a stateful DoFn with side inputs. Beam 2.77 takes the key coder from "any input
    whose tag is not a side input", comparing tags with side input objects, so with side inputs it may
    take a side input's coder for the key (by the set order of the tags: from one run to the next)
    and refuse the graph ("must be key-value pairs"). The tags of side inputs are left out here."""

    def _get_key_and_window_coder(self, named_inputs):
        if named_inputs is not None:
            named_inputs = {tag: pc for tag, pc in named_inputs.items() if not tag.startswith(SIDE_INPUT_PREFIX)}
        return super()._get_key_and_window_coder(named_inputs)


class OneBundlePerKey(beam.PTransform):
    """PCollection[(K, V)] -> the same (K, V), or with `fn` (V -> iterable) / `dofn` (a DoFn over V)
    their outputs; on Flink's batch runner it and the transforms fused after it run one key per
    bundle. K needs a deterministic coder.

    Side inputs (keyword arguments) go to fn / dofn, except those named in `gates`. Fusion stops at
    any transform that reads a side input, so a step that must run inside the bundle and reads one
    (the template dictionary, a total for progress, the index's ready signal) is done here."""

    def __init__(self, fn: Optional[Callable] = None, *, dofn: Optional[beam.DoFn] = None, gates: tuple = (),
                 **side_inputs):
        super().__init__()
        self.fn, self.dofn, self.gates, self.side = fn, dofn, tuple(gates), side_inputs

    def expand(self, keyed):
        keep = self.fn is None and self.dofn is None
        return keyed | "OneKeyPerBundle" >> _StatefulParDo(
            _OneKeyFn(self.fn, self.dofn, keep_key=keep, gates=self.gates), **self.side)


class ShardedBundles(beam.PTransform):
    """PCollection[T] -> the same T, or with `fn` / `dofn` their outputs (OneBundlePerKey), dealt into
    `shards` shards by a stable hash of `key(element)` (a str) and run one shard per bundle. In place
    of a Reshuffle before a stage whose output grows with its input."""

    def __init__(self, key: Callable[[Any], str], fn: Optional[Callable] = None, *, dofn: Optional[beam.DoFn] = None,
                 shards: int = SHARDS, gates: tuple = (), **side_inputs):
        super().__init__()
        self.key, self.shards = key, shards
        self.fn, self.dofn, self.gates, self.side = fn, dofn, gates, side_inputs

    def expand(self, pcoll):
        key, shards = self.key, self.shards
        keyed = pcoll | "DealIntoShards" >> beam.Map(lambda e: (stable_shard(key(e), shards), e)
                                                     ).with_output_types(Tuple[int, Any])
        if self.fn is None and self.dofn is None:
            return (keyed | "OneShardPerBundle" >> OneBundlePerKey(gates=self.gates, **self.side)
                    | "DropShard" >> beam.Values())
        return keyed | "OneShardPerBundle" >> OneBundlePerKey(self.fn, dofn=self.dofn, gates=self.gates,
                                                              **self.side)
