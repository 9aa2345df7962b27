"""Record types shared by the stages, and dead-letter records.

Elements between stages are plain dicts (picklable, schema-free, cheap to serialise):

- Document: {"id": str, "text": str, "title", "url", "lang", "published_at": str | None,
  "source": str (file or table), "line": int | None}; after cleaning "text" holds the cleaned text
  and "raw_chars" the original length.
- Embedding: {"id": str, "vector": np.ndarray[float32] (a list where built by hand), "model": str}.
- Pair: {"doc_a": str, "doc_b": str, "cosine": float, "method": str} with doc_a < doc_b.
- DeadLetter: {"stage", "reason", "source", "line", "record_id", "detail", "payload"}.
"""
from __future__ import annotations

from typing import Any

DEAD_LETTER_TAG = "dead_letter"
# Keep dead-letter payloads bounded: a 50 MB bad record must not become a 50 MB error row.
MAX_PAYLOAD_CHARS = 2000


def dead_letter(stage: str, reason: str, *, source: str | None = None, line: int | None = None,
                record_id: str | None = None, detail: str = "", payload: Any = None) -> dict:
    """Builds a dead-letter record: why one input did not reach the output, and where it came from."""
    text = payload if isinstance(payload, str) else (None if payload is None else repr(payload))
    if text is not None and len(text) > MAX_PAYLOAD_CHARS:
        text = text[:MAX_PAYLOAD_CHARS] + f"... [{len(text) - MAX_PAYLOAD_CHARS} more chars]"
    return {
        "stage": stage,
        "reason": reason,
        "source": source,
        "line": line,
        "record_id": record_id,
        "detail": detail[:MAX_PAYLOAD_CHARS],
        "payload": text,
    }


def in_global_window(outputs):
    """Wraps outputs emitted from DoFn.finish_bundle (plain values or TaggedOutputs) in the global
    window, as Beam requires there; the buffering DoFns of this project are batch, global-window."""
    import apache_beam as beam
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.windowed_value import WindowedValue

    for out in outputs:
        if isinstance(out, beam.pvalue.TaggedOutput):
            yield beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, -1, [GlobalWindow()]))
        else:
            yield WindowedValue(out, -1, [GlobalWindow()])


def as_list(vector) -> list[float]:
    """A vector as the job carries it (float32 array) or a list -> a JSON-serialisable list."""
    return vector.tolist() if hasattr(vector, "tolist") else list(vector)


def ordered_pair(a: str, b: str) -> tuple[str, str]:
    """The canonical order of a document pair, so (a, b) and (b, a) are one key on every worker."""
    return (a, b) if a < b else (b, a)


class ConfigError(ValueError):
    """A problem with the job's options or environment, found before any heavy work starts."""
