"""The Python SDK worker a portable runner starts (PROCESS environment): Beam's `sdk_worker_main`,
with the data plane's messages to the runner kept small.

Beam's Python worker buffers each output of a bundle until 10 MB and coalesces up to 10 MB more
into one gRPC message; the Java runner queues up to 100 such messages per bundle in its heap while
its task thread is held by the engine (a busy sorter, a full network buffer). That is up to ~1 GB
in a TaskManager whose heap is ~590 MB: a 20,000-page job ran a TaskManager out of heap in the
stage that embeds and scores units ("OutOfMemoryError: Java heap space" in a gRPC thread). With
messages of at most `NEAR_DUP_DATA_BUFFER_BYTES` (default 1 MiB, Beam Java's own limit for the
opposite direction) the queue is bounded by ~100 MiB per bundle.

Run by `pipelines.process_worker` as `python -m pipelines.sdk_worker` with the environment
`sdk_worker_main` reads.
"""
from __future__ import annotations

import os
import sys

DEFAULT_DATA_BUFFER_BYTES = 1 << 20


def data_buffer_bytes(env=os.environ) -> int:
    """NEAR_DUP_DATA_BUFFER_BYTES (a positive integer), or the default."""
    raw = env.get("NEAR_DUP_DATA_BUFFER_BYTES", "")
    if not raw:
        return DEFAULT_DATA_BUFFER_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"NEAR_DUP_DATA_BUFFER_BYTES must be a positive number of bytes, got {raw!r}")
    return int(raw)


def limit_data_buffers(limit: int) -> None:
    """Makes every data/timer output stream of this process flush at `limit` bytes and the sender
    coalesce at most `limit` bytes into one gRPC message (Beam's defaults: 10 MB each)."""
    from apache_beam.runners.worker import data_plane

    size_based = data_plane.SizeBasedBufferingClosableOutputStream
    time_based = data_plane.TimeBasedBufferingClosableOutputStream

    def create(close_callback, flush_callback, data_buffer_time_limit_ms):
        if data_buffer_time_limit_ms > 0:
            return time_based(close_callback, flush_callback=flush_callback, size_flush_threshold=limit,
                              time_flush_threshold_ms=data_buffer_time_limit_ms)
        return size_based(close_callback, flush_callback=flush_callback, size_flush_threshold=limit)

    data_plane.ClosableOutputStream.create = staticmethod(create)
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = limit  # read at run time by the sender's coalescing loop


def main(argv: list[str]) -> None:
    limit_data_buffers(data_buffer_bytes())
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(argv)


if __name__ == "__main__":
    main(sys.argv)
