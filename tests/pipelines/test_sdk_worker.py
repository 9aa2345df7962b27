"""The SDK worker's data plane: output messages to the runner stay small (the runner queues 100 per bundle)."""
import subprocess
import sys

import pytest

from pipelines.sdk_worker import DEFAULT_DATA_BUFFER_BYTES, data_buffer_bytes

PROBE = """
import sys
from pipelines.sdk_worker import limit_data_buffers
from apache_beam.runners.worker import data_plane
if sys.argv[1] != "beam":
    limit_data_buffers(int(sys.argv[1]))
sent = []
stream = data_plane.ClosableOutputStream.create(sent.append, sent.append, 0)
timed = data_plane.ClosableOutputStream.create(sent.append, sent.append, 10_000)
record = b"x" * 1000
for _ in range(30_000):            # 30 MB of 1 KB elements, flushed as the worker does after each
    stream.write(record)
    stream.maybe_flush()
stream.close()
timed.close()
print(max(len(s) for s in sent), len(sent), timed._size_flush_threshold, data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD)
"""


def probe(limit: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", PROBE, limit], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [int(v) for v in out.stdout.split()]


def test_output_streams_flush_at_the_limit_instead_of_beams_10_mb():
    biggest, messages, timed_threshold, coalesce = probe(str(DEFAULT_DATA_BUFFER_BYTES))
    assert DEFAULT_DATA_BUFFER_BYTES < biggest <= DEFAULT_DATA_BUFFER_BYTES + 1000  # one element past the limit
    assert messages >= 28 and timed_threshold == coalesce == DEFAULT_DATA_BUFFER_BYTES
    # Beam's own setting, for comparison: what a TaskManager would queue 100 of.
    beam_biggest, beam_messages, _, beam_coalesce = probe("beam")
    assert beam_biggest > 10 * DEFAULT_DATA_BUFFER_BYTES and beam_messages <= 4 and beam_coalesce == 10 << 20


def test_the_limit_comes_from_the_environment_and_must_be_positive():
    assert data_buffer_bytes({}) == DEFAULT_DATA_BUFFER_BYTES
    assert data_buffer_bytes({"NEAR_DUP_DATA_BUFFER_BYTES": "65536"}) == 65536
    for bad in ("0", "-5", "1MB"):
        with pytest.raises(ValueError, match="NEAR_DUP_DATA_BUFFER_BYTES"):
            data_buffer_bytes({"NEAR_DUP_DATA_BUFFER_BYTES": bad})
