"""Unit tests of the incremental-run helpers (the end-to-end behaviour is in tests/pipelines/test_incremental.py)."""
import numpy as np

from transforms.io.elasticsearch_store import document_id
from transforms.incremental.state import es_id_of_unit, unit_settings
from transforms.signals.lsh import shingles_from_text, shingles_to_text
from transforms.signals.minhash import MinHasher, MinHashParams
from transforms.text.units import split_units


def test_unit_ids_map_to_the_ids_their_vectors_are_stored_under():
    doc = {"id": "curso#1/tema", "text": "Primer párrafo con bastantes palabras para ser una unidad.\n\n"
                                         "Segundo párrafo, también largo, con otra idea distinta. Y una frase más."}
    units, _ = split_units(doc, ("document", "paragraph", "sentence"), min_chars=10)
    assert {u["unit_type"] for u in units} == {"document", "paragraph", "sentence"} and len(units) >= 5
    for u in units:
        assert es_id_of_unit(u["unit_id"]) == document_id(u["doc_id"], u["unit_type"], u["unit_index"])


def test_shingles_survive_the_round_trip_through_the_index_encoding():
    _, ids = MinHasher(MinHashParams()).signature("el ciclo del agua describe el movimiento continuo del agua")
    assert ids.size > 5 and ids.max() > 2**40  # real 64-bit shingle ids
    back = shingles_from_text(shingles_to_text(ids))
    assert back.dtype == np.uint64 and np.array_equal(back, ids)
    assert shingles_from_text(shingles_to_text(np.zeros(0, np.uint64))).size == 0


def test_settings_change_with_any_input_that_changes_vectors_or_signatures():
    base = unit_settings("abc", "fp32|chunk", "k3", 20, 6)
    assert base == unit_settings("abc", "fp32|chunk", "k3", 20, 6)
    assert len({base, unit_settings("abd", "fp32|chunk", "k3", 20, 6), unit_settings("abc", "bf16|chunk", "k3", 20, 6),
                unit_settings("abc", "fp32|chunk", "k4", 20, 6), unit_settings("abc", "fp32|chunk", "k3", 16, 8)}) == 5
