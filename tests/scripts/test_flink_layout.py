"""The local Flink cluster's layout: FLINK_TASKMANAGERS JVMs of FLINK_SLOTS task slots each.

Every slot needs its own sorter memory, gRPC buffers and heap for its SDK worker's data; a TaskManager
of two slots must get all three, or a job fails deep inside Flink ("Too little memory provided to
sorter", "Cannot reserve ... bytes of direct buffer memory", OutOfMemoryError: Java heap space). Checked here with Flink's own memory calculator
(BashJavaUtils, what `flink.sh start` hands each TaskManager JVM), without starting a cluster.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLINK = REPO / "scripts" / "services" / "flink.sh"
pytestmark = pytest.mark.integration


def flink(*args, **env):
    return subprocess.run(["bash", str(FLINK), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def installed():
    services = Path(os.environ.get("SERVICES_DIR", REPO / ".services"))
    if list(services.glob("flink-*/lib/.complete")):
        return  # (`install` would also rewrite a running cluster's configuration with this layout)
    done = flink("install")
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"flink.sh install failed:\n{done.stderr[-2000:]}")
        pytest.skip(f"Flink job server not installable here: {done.stderr.strip().splitlines()[-1:]}")


def layout(tmp_path, taskmanagers: int, slots: int) -> tuple[dict, dict]:
    """(flink-conf.yaml as {key: value}, the TaskManager JVM's -Xmx / MaxDirectMemorySize in bytes)."""
    folder = tmp_path / f"{taskmanagers}x{slots}"
    out = flink("conf", str(folder), FLINK_TASKMANAGERS=str(taskmanagers), FLINK_SLOTS=str(slots))
    assert out.returncode == 0, out.stderr
    conf = dict(line.split(": ", 1) for line in (folder / "flink-conf.yaml").read_text().splitlines()
                if line and not line.startswith("#"))
    jvm = {k: int(v) for k, v in re.findall(r"-(Xmx|XX:MaxDirectMemorySize=)(\d+)", out.stdout)}
    return conf, jvm


def test_each_slot_gets_its_own_sorter_and_grpc_memory(installed, tmp_path):
    one, one_jvm = layout(tmp_path, 2, 1)
    two, two_jvm = layout(tmp_path, 1, 2)
    assert one["taskmanager.numberOfTaskSlots"] == "1" and two["taskmanager.numberOfTaskSlots"] == "2"
    # The same parallelism, all slots of the cluster.
    assert one["parallelism.default"] == two["parallelism.default"] == "2"
    # Managed memory is split between the slots: each slot keeps the 768 MB one slot has.
    assert (one["taskmanager.memory.managed.size"], two["taskmanager.memory.managed.size"]) == ("768m", "1536m")
    # Direct memory (gRPC buffers to the SDK workers) grows by a slot's 256 MB of task off-heap ...
    assert two_jvm["XX:MaxDirectMemorySize="] - one_jvm["XX:MaxDirectMemorySize="] == 256 * 2**20
    # ... and each slot keeps one slot's task heap (the heap less Flink's 128 MB framework heap): with
    # less, a TaskManager of two slots ran out of heap at 20,000 pages and the job hung.
    framework = 128 * 2**20
    assert two_jvm["Xmx"] - framework >= 0.99 * 2 * (one_jvm["Xmx"] - framework)


def test_a_layout_that_is_not_a_positive_number_is_refused(tmp_path):
    for variable, value in (("FLINK_SLOTS", "0"), ("FLINK_TASKMANAGERS", "two")):
        out = flink("conf", str(tmp_path / "x"), **{variable: value})
        assert out.returncode == 2 and "must be positive integers" in out.stderr
        assert not (tmp_path / "x").exists()
