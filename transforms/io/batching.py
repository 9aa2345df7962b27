"""One batching DoFn: elements are buffered and handled a batch at a time (a bulk request, a
multi-search, an mget), the last partial batch at the end of the bundle.

    class _LookupFn(BatchingDoFn):
        def handle(self, batch):              # list of buffered items -> outputs
            for hit in search(self.client, batch): yield hit

    ids | beam.ParDo(_LookupFn(connection, batch_size=500))

Subclasses may override `prepare(element)` -> (item to buffer, its size in bytes) to batch by bytes
too (`batch_bytes`), and `flush_outputs()` for what must be emitted when a bundle ends (a request
still in flight). With a `connection` (anything with `.client()`), `self.client` is opened in
setup and closed in teardown.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import apache_beam as beam

from transforms.records import in_global_window


class BatchingDoFn(beam.DoFn):
    """Buffers elements into batches of `batch_size` (and at most `batch_bytes`, when given)."""

    def __init__(self, connection: Optional[Any] = None, batch_size: int = 500, batch_bytes: int = 0):
        super().__init__()
        self.connection = connection
        self.batch_size = max(1, batch_size)
        self.batch_bytes = batch_bytes

    def setup(self):
        self.client = self.connection.client() if self.connection is not None else None

    def start_bundle(self):
        self._buffer: list = []
        self._buffer_bytes = 0

    def prepare(self, element) -> tuple[Any, int]:
        """element -> (what is buffered, its size in bytes); the element itself, size 0, by default."""
        return element, 0

    def process(self, element, *side_inputs, **side_kwargs):
        item, size = self.prepare(element)
        self._buffer.append(item)
        self._buffer_bytes += size
        if len(self._buffer) >= self.batch_size or (self.batch_bytes and self._buffer_bytes >= self.batch_bytes):
            yield from self._handle_buffer()

    def finish_bundle(self):
        yield from in_global_window([*self._handle_buffer(), *self.flush_outputs()])

    def _handle_buffer(self) -> Iterable:
        if not self._buffer:
            return
        batch, self._buffer, self._buffer_bytes = self._buffer, [], 0
        yield from self.handle(batch)

    def handle(self, batch: list) -> Iterable:
        raise NotImplementedError

    def flush_outputs(self) -> Iterable:
        """Outputs still owed when the bundle ends (after the last batch was handled)."""
        return ()

    def teardown(self):
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
