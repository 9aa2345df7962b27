"""A sentence-transformers model run by OpenVINO on CPU: same vectors, 2-3.5x the speed of torch fp32.

    path = ensure_export(source_dir)                 # once, at install/build time (make venv, Dockerfile)
    encoder = OpenVinoEncoder(source_dir, precision="bf16", threads=2)
    vectors = encoder.encode(texts)                  # np.ndarray [n, dim] float32, L2-normalised

Only the model's Transformer module is exported, to ONNX (`torch.onnx.export`, from the local weights:
never a hub download); tokenisation (the model's own fast tokenizer, its max_seq_length), pooling and
normalisation follow the model's sentence-transformers configuration here in numpy. A model whose
modules are anything but Transformer -> Pooling (mean or CLS) [-> Normalize] is not supported
(`export_support` says why) and runs on torch.

OpenVINO reads the ONNX file itself (`Core.read_model`), so no converter runs on workers (OpenVINO's
converter, `convert_model`, reports telemetry to the network; it is not used). Exports live under
`export_root()`, keyed by a fingerprint of the model files, written once with an atomic rename.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import warnings
from typing import Optional

import numpy as np

_LOG = logging.getLogger(__name__)

EXPORT_NAME = "transformer.onnx"
ENV_EXPORT_ROOT = "NEAR_DUP_MODEL_EXPORTS"
# OpenVINO's names for the precisions the job records.
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}


def import_openvino():
    """The openvino module, with its converter's telemetry off. `import openvino` imports its model
    converter, which starts a telemetry client on import (a client id written under ~/intel, a sender
    thread that keeps the process alive, events sent over the network on conversion); the job never
    converts, so the telemetry package is made unimportable and OpenVINO falls back to its own stub."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


def export_root() -> str:
    """Where exports are kept: $NEAR_DUP_MODEL_EXPORTS, else <python prefix>/share/near-dup-models (inside
    the virtualenv or image) when writable or already populated, else ~/.cache/near-dup-models."""
    if os.environ.get(ENV_EXPORT_ROOT):
        return os.environ[ENV_EXPORT_ROOT]
    in_prefix = os.path.join(sys.prefix, "share", "near-dup-models")
    if os.path.isdir(in_prefix) or os.access(sys.prefix, os.W_OK):
        return in_prefix
    return os.path.join(os.path.expanduser("~"), ".cache", "near-dup-models")


def _modules(source: str) -> list[dict]:
    path = os.path.join(source, "modules.json")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def pooling_config(source: str) -> dict:
    """The model's Pooling module configuration ({} when it has none)."""
    for module in _modules(source):
        if module["type"].endswith(".Pooling"):
            with open(os.path.join(source, module["path"], "config.json"), encoding="utf-8") as handle:
                return json.load(handle)
    return {}


def export_support(source: Optional[str]) -> Optional[str]:
    """None when the model at `source` (a local sentence-transformers directory) can run here, else why not."""
    if not source or not os.path.isdir(source):
        return "the model is not a local directory"
    types = [m["type"].rsplit(".", 1)[-1] for m in _modules(source)]
    if types[:2] != ["Transformer", "Pooling"] or any(t != "Normalize" for t in types[2:]):
        return f"modules {types or 'unknown'} (supported: Transformer, Pooling[, Normalize])"
    pool = pooling_config(source)
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v]
    if modes not in (["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"]):
        return f"pooling {modes} (supported: mean tokens or CLS token)"
    return None


@functools.lru_cache(maxsize=16)
def model_fingerprint(source: str) -> str:
    """sha256 (16 hex) over the model's files: paths, sizes and contents."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(source)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, source).encode())
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def export_path(source: str, root: Optional[str] = None) -> str:
    return os.path.join(root or export_root(), model_fingerprint(source), EXPORT_NAME)


def _user_cache() -> str:
    return os.path.join(tempfile.gettempdir(), f"near-dup-models-{os.getuid()}")


def _writable(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def find_export(source: str) -> Optional[str]:
    """The export of this model's files if one exists (under export_root() or this user's temporary
    cache), else None."""
    for root in (export_root(), _user_cache()):
        path = export_path(source, root)
        if os.path.exists(path):
            return path
    return None


def ensure_export(source: str, root: Optional[str] = None) -> str:
    """Exports the model's Transformer module to ONNX once (~3 s for MiniLM) under `root` (default:
    export_root(), or this user's temporary cache where that is read-only); returns the file's path.
    Inputs input_ids, attention_mask[, token_type_ids] [batch, seq] int64; output last_hidden_state."""
    reason = export_support(source)
    if reason:
        raise ValueError(f"cannot export {source}: {reason}")
    found = find_export(source) if root is None else None
    if found:
        return found
    path = export_path(source, root)
    if os.path.exists(path):
        return path
    if not _writable(os.path.dirname(path)):
        path = export_path(source, _user_cache())
        os.makedirs(os.path.dirname(path), exist_ok=True)
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    sample = tokenizer(["una frase de ejemplo", "otra"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    staging = tempfile.mkdtemp(prefix=".export-", dir=os.path.dirname(path))
    tmp = os.path.join(staging, EXPORT_NAME)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for an encoder
        torch.onnx.export(Hidden(model), tuple(sample[n] for n in names), tmp, input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]})
    os.replace(tmp, path)  # atomic: a concurrent exporter either wins or finds the file
    os.rmdir(staging)
    _LOG.info("exported %s to %s", source, path)
    return path


class FastTokenizer:
    """A model's tokenizer.json run by the `tokenizers` library, called like the subset of a transformers
    fast tokenizer the job uses: `tok(texts, add_special_tokens=, truncation=, max_length=,
    return_offsets_mapping=)` -> {"input_ids", "token_type_ids"[, "offset_mapping"]} (lists per text, or
    one list for a str) and `pad_token_id`. Same ids and offsets as AutoTokenizer (tested)."""

    def __init__(self, path: str, max_length: int):
        from tokenizers import Tokenizer

        self._path, self.model_max_length = path, max_length
        self._lock = threading.Lock()
        base = Tokenizer.from_file(path)
        self.pad_token_id = next((i for i in ((base.padding or {}).get("pad_id"), base.token_to_id("[PAD]"),
                                              base.token_to_id("<pad>")) if i is not None), 0)
        base.no_padding()
        base.no_truncation()
        self._by_length = {None: base}  # max_length (None: no truncation) -> a Tokenizer set up for it

    @classmethod
    def load(cls, source: str) -> Optional["FastTokenizer"]:
        """The model folder's tokenizer.json, or None if it has none."""
        path = os.path.join(source, "tokenizer.json")
        if not os.path.exists(path):
            return None
        max_length = 512
        config = os.path.join(source, "tokenizer_config.json")
        if os.path.exists(config):
            with open(config, encoding="utf-8") as handle:
                max_length = int(json.load(handle).get("model_max_length") or 512)
        return cls(path, min(max_length, 10**6))

    def _tokenizer(self, max_length: Optional[int]):
        """The tokenizer truncating at `max_length` (truncation is a setting of the object: one per length)."""
        with self._lock:
            if max_length not in self._by_length:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(self._path)
                tok.no_padding()
                tok.enable_truncation(max_length)
                self._by_length[max_length] = tok
            return self._by_length[max_length]

    def __call__(self, texts, add_special_tokens: bool = True, truncation: bool = False,
                 max_length: Optional[int] = None, return_offsets_mapping: bool = False, padding: bool = False,
                 verbose: bool = False) -> dict:
        if padding:
            raise ValueError("FastTokenizer pads nothing: the encoder pads per width itself")
        single = isinstance(texts, str)
        limit = (max_length or self.model_max_length) if truncation else None
        encodings = self._tokenizer(limit).encode_batch([texts] if single else list(texts),
                                                        add_special_tokens=add_special_tokens)
        out = {"input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings]}
        if return_offsets_mapping:
            out["offset_mapping"] = [list(e.offsets) for e in encodings]
        return {k: v[0] for k, v in out.items()} if single else out


class OpenVinoEncoder:
    """sentence-transformers' encode() API over an OpenVINO-compiled export of a local model.

    Attributes the job reads: tokenizer, max_seq_length, dedup_device ("cpu"), dedup_precision (what
    OpenVINO runs: "bf16" or "fp32"), dedup_backend ("openvino")."""

    def __init__(self, source: str, *, onnx_path: Optional[str] = None, precision: str = "fp32",
                 threads: Optional[int] = None):
        ov = import_openvino()

        if precision not in _OV_PRECISION:
            raise ValueError(f"precision must be one of {sorted(_OV_PRECISION)}, got {precision!r}")
        onnx_path = onnx_path or find_export(source)
        if not onnx_path:
            raise FileNotFoundError(f"no OpenVINO export of {source} under {export_root()}: "
                                    f"run python -m transforms.signals.openvino_backend {source}")
        with open(os.path.join(source, "sentence_bert_config.json"), encoding="utf-8") as handle:
            self.max_seq_length = int(json.load(handle).get("max_seq_length") or 512)
        # tokenizer.json through the tokenizers library: `from transformers import AutoTokenizer` imports
        # torch (0.5 GB in every worker) for nothing on this path.
        self.tokenizer = FastTokenizer.load(source)
        if self.tokenizer is None:  # a model with no tokenizer.json
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(source)
        pool = pooling_config(source)
        self.cls_pooling = bool(pool.get("pooling_mode_cls_token"))
        config = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision]}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        model = core.read_model(onnx_path)
        self._inputs = [i.get_any_name() for i in model.inputs]
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.dim = int(pool.get("word_embedding_dimension") or model.outputs[0].get_partial_shape()[2].get_length())
        chosen = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.dedup_device, self.dedup_backend = "cpu", "openvino"
        self.dedup_precision = "bf16" if chosen == ov.Type.bf16 else "fp32"

    pad_multiple = 16  # each text padded to its own length rounded up: ~5x fewer shapes for the CPU plugin to
    # compile on a fresh worker (first pass 9-20% slower than a warm one at 1, 0-5% at 16; warm speed the same)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, batch_size: int = 32, normalize_embeddings: bool = True, convert_to_numpy: bool = True,
               show_progress_bar: bool = False, **_) -> np.ndarray:
        """Texts -> float32 [n, dim], cut at max_seq_length tokens as sentence-transformers does.

        Each text is padded to its own token count rounded up to pad_multiple, and a batch holds texts of
        one such width: the padding depends on the text alone. (Padded to its batch-mates' length, a
        vector moved in the 4th decimal in bf16, so with the run it was part of.) A text's vector is the
        same in any batch, of any size (tested)."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, padding=False, verbose=False)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        step = self.pad_multiple
        by_width: dict[int, list[int]] = {}
        for i in range(len(texts)):
            by_width.setdefault(-(-len(ids[i]) // step) * step, []).append(i)
        batches = [(width, same[k:k + batch_size]) for width, same in sorted(by_width.items())
                   for k in range(0, len(same), batch_size)]
        for width, batch in batches:
            input_ids = np.full((len(batch), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                token_types = np.zeros_like(input_ids)
                if types is not None:
                    for row, i in enumerate(batch):
                        token_types[row, :len(types[i])] = types[i]
                feeds["token_type_ids"] = token_types
            hidden = self._request.infer({k: v for k, v in feeds.items() if k in self._inputs})[0]
            hidden = np.asarray(hidden, dtype=np.float32)
            if self.cls_pooling:
                pooled = hidden[:, 0]
            else:
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[batch] = pooled
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def main(argv=None) -> int:
    """python -m transforms.signals.openvino_backend [MODEL ...]: export models once (install/build time)."""
    import argparse

    from transforms.signals.models import DEFAULT_MODEL, resolve_model_source

    parser = argparse.ArgumentParser(prog="python -m transforms.signals.openvino_backend", description=main.__doc__)
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL],
                        help="packaged model names or local sentence-transformers directories")
    parser.add_argument("--root", default=None, help=f"export folder (default ${ENV_EXPORT_ROOT} or {export_root()})")
    args = parser.parse_args(argv)
    for spec in args.models:
        source = resolve_model_source(spec)
        reason = export_support(source)
        if reason:
            print(f"{spec}: not exported ({reason}); it runs on torch")
            continue
        print(f"{spec}: {ensure_export(source, args.root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
