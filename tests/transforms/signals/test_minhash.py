import numpy as np
import pytest
from datasketch import MinHash

from transforms.signals.minhash import (MinHasher, MinHashParams, exact_jaccard, shingle_hash32, shingle_hash64,
                                        shingle_overlap)
from transforms.text.shingle import jaccard, shingle_tokens, shingles

TEXT = "¿Qué es la fotosíntesis? Es el proceso por el que las plantas, las algas y algunas bacterias " \
       "transforman la luz en energía química; ¡sin ella no habría vida!"


def test_tokens_are_case_and_punctuation_free_and_accents_optional():
    assert shingle_tokens("¿Qué TAL? ¡Bien, gracias!") == ["qué", "tal", "bien", "gracias"]
    assert shingle_tokens("¿Qué TAL?", remove_accents=True) == ["que", "tal"]
    assert shingle_tokens("ab, c", kind="char") == list("ab c")


def test_shingles_of_short_texts_and_jaccard():
    assert shingles(["a", "b"], 3) == {"a b"}
    assert shingles(["a", "b", "c", "d"], 3) == {"a b c", "b c d"}
    assert jaccard({"x", "y"}, {"y", "z"}) == pytest.approx(1 / 3)


@pytest.mark.parametrize("num_perm,seed,n", [(128, 1, 3), (64, 42, 5), (256, 7, 1)])
def test_signature_is_bit_identical_to_datasketch(num_perm, seed, n):
    hasher = MinHasher(MinHashParams(num_perm=num_perm, seed=seed, shingle_n=n))
    sig, ids = hasher.signature(TEXT)
    shingle_set = shingles(shingle_tokens(TEXT), n)
    reference = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=shingle_hash32)
    reference.update_batch(list(shingle_set))
    assert sig.dtype == np.uint32 and np.array_equal(sig, reference.hashvalues)
    assert sorted(ids.tolist()) == sorted(shingle_hash64(s) for s in shingle_set)


def test_exact_jaccard_on_ids_equals_jaccard_on_strings():
    hasher = MinHasher()
    other = TEXT.replace("algas", "setas").replace("vida", "nada")
    expected = jaccard(shingles(shingle_tokens(TEXT), 3), shingles(shingle_tokens(other), 3))
    assert exact_jaccard(hasher.shingle_ids(TEXT), hasher.shingle_ids(other)) == pytest.approx(expected)
    assert 0.3 < expected < 0.9


def test_overlap_gives_each_sides_share_of_shingles_in_the_other():
    hasher = MinHasher()
    passage = "el proceso por el que las plantas, las algas y algunas bacterias transforman la luz"
    host = "Un texto sobre otra cosa, largo y sin nada en común con la biología de las hojas. " + passage
    a, b = hasher.shingle_ids(passage), hasher.shingle_ids(host)
    jac, share_a, share_b = shingle_overlap(a, b)
    assert share_a == 1.0 and share_b == pytest.approx(a.size / b.size)
    assert jac == pytest.approx(exact_jaccard(a, b)) and jac < 0.6
    assert shingle_overlap(b, a) == (jac, share_b, share_a)
    assert shingle_overlap(a, hasher.shingle_ids("")) == (0.0, 0.0, 0.0)
    from transforms.matching.merge import overlap
    assert overlap(b, a) == (pytest.approx(jac), 1.0, a.size)  # the passage is the smaller side, all shared


def test_params_key_changes_with_any_setting():
    keys = {MinHashParams().key, MinHashParams(seed=2).key, MinHashParams(shingle_n=5).key,
            MinHashParams(num_perm=256).key, MinHashParams(remove_accents=True).key}
    assert len(keys) == 5


def test_empty_text_gives_empty_ids_and_max_signature():
    sig, ids = MinHasher().signature("¡¿ … !?")
    assert ids.size == 0 and (sig == 0xFFFFFFFF).all()
