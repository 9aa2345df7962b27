"""Bundles of one key: the elements pass through unchanged, dealt into stable shards. That the
runner then hands a stage one key per bundle is checked on the real Flink cluster
(tests/pipelines/test_flink.py)."""
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.bundles import OneBundlePerKey, ShardedBundles, stable_shard


def test_a_shard_is_the_same_in_another_process_and_every_shard_is_used():
    keys = [f"doc-{i}" for i in range(2000)]
    here = [stable_shard(k, 16) for k in keys]
    code = "import sys; from transforms.io.bundles import stable_shard; " \
           "print(','.join(str(stable_shard(f'doc-{i}', 16)) for i in range(2000)))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "7"}, cwd=Path(__file__).resolve().parents[3])
    assert [int(s) for s in there.stdout.strip().split(",")] == here
    counts = [here.count(s) for s in range(16)]
    assert min(counts) > 2000 / 16 / 2 and max(counts) < 2000 / 16 * 2  # spread, none empty


def test_sharded_bundles_hand_on_every_element_once_unchanged():
    docs = [{"id": f"d{i % 50}", "n": i} for i in range(120)]  # repeated ids: nothing is merged
    with TestPipeline() as p:
        out = p | beam.Create(docs) | ShardedBundles(key=lambda d: d["id"], shards=7)
        assert_that(out, equal_to(docs))


def test_one_bundle_per_key_keeps_keys_and_grouped_values():
    with TestPipeline() as p:
        out = (p | beam.Create([(i % 3, i) for i in range(9)]) | beam.GroupByKey() | OneBundlePerKey()
               | beam.MapTuple(lambda k, vs: (k, sorted(vs))))
        assert_that(out, equal_to([(0, [0, 3, 6]), (1, [1, 4, 7]), (2, [2, 5, 8])]))


def test_a_shard_step_passes_side_inputs_to_its_function_and_holds_back_for_gates():
    with TestPipeline() as p:
        total = beam.pvalue.AsSingleton(p | "Total" >> beam.Create([100]))
        names = beam.pvalue.AsDict(p | "Names" >> beam.Create([("a", "A"), ("b", "B")]))
        ready = beam.pvalue.AsSingleton(p | "Ready" >> beam.Create(["index refreshed"]))

        def label(x, total, names):
            yield f"{names[x]}/{total}"

        out = (p | beam.Create(["a", "b", "a"])
               | ShardedBundles(key=str, fn=label, shards=4, gates=("ready",), total=total, names=names, ready=ready))
        assert_that(out, equal_to(["A/100", "B/100", "A/100"]))


_TRANSLATE = """
import apache_beam as beam
from transforms.io.bundles import ShardedBundles
p = beam.Pipeline()
side = beam.pvalue.AsSingleton(p | "Side" >> beam.Create([7]))
_ = p | beam.Create(["x"]) | ShardedBundles(key=str, fn=lambda x, side: [x], side=side)
p.to_runner_api()
print("translated")
"""


def test_a_shard_step_with_side_inputs_translates_whatever_the_hash_seed():
    """Beam 2.77 may take a side input's coder for a stateful DoFn's key, by the set order of the input
    tags (PYTHONHASHSEED): here an int singleton, refused as "must be key-value pairs".
    _StatefulParDo leaves side inputs out; every seed translates."""
    root = Path(__file__).resolve().parents[3]
    for seed in range(6):
        done = subprocess.run([sys.executable, "-c", _TRANSLATE], capture_output=True, text=True, cwd=root,
                              env={"PYTHONHASHSEED": str(seed)})
        assert done.returncode == 0 and "translated" in done.stdout, (seed, done.stderr[-2000:])
