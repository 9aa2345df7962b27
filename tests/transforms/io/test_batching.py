"""The one batching DoFn: batches of batch_size (and batch_bytes), the rest at the bundle's end."""
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.io.batching import BatchingDoFn


class _Sizes(BatchingDoFn):
    """Emits (batch length, first element) per batch, and one marker per bundle end."""

    def prepare(self, element):
        return element, len(element)

    def handle(self, batch):
        yield len(batch), batch[0]

    def flush_outputs(self):
        yield "end"


def test_batches_by_count_and_the_last_partial_batch_at_the_bundle_end():
    with TestPipeline() as p:  # one element flattened in one bundle, in order
        out = (p | beam.Create([[f"e{i}" for i in range(7)]]) | beam.FlatMap(lambda xs: xs)
               | beam.ParDo(_Sizes(batch_size=3)))
        assert_that(out, equal_to([(3, "e0"), (3, "e3"), (1, "e6"), "end"]))


def test_batches_by_bytes_before_the_count_is_reached():
    with TestPipeline() as p:
        out = (p | beam.Create([["aaaa", "bbbb", "cc", "dddddd", "e"]]) | beam.FlatMap(lambda xs: xs)
               | beam.ParDo(_Sizes(batch_size=100, batch_bytes=8)))
        # 4+4 bytes reach 8: a batch; 2+6 reach 8: a batch; "e" is left for the end of the bundle
        assert_that(out, equal_to([(2, "aaaa"), (2, "cc"), (1, "e"), "end"]))


def test_a_client_is_opened_per_instance_and_closed_in_teardown():
    closed = []

    class Conn:
        def client(self):
            class Client:
                def close(self_inner):
                    closed.append(True)
            return Client()

    fn = _Sizes(Conn(), batch_size=2)
    fn.setup()
    assert fn.client is not None
    fn.teardown()
    assert closed == [True]
