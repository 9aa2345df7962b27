import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.text.language import detect_language
from transforms.text.units import SplitUnits, content_hash, sentence_spans, split_units

TEXT = ("El Sr. García llegó tarde, etc. ¿Vienes mañana? ¡Claro que sí! Dijo: «Hola a todos».\n\n"
        "Mide 3,14 m., p. ej. esta mesa. La Dra. Pérez (EE. UU.) lo confirmó.\n\n"
        "Mr. Smith paid $3.50 for it. He said \"Wow.\" Then he left.")


def sentences(text, lang="es"):
    return [text[s:e] for s, e in sentence_spans(text, lang)]


def test_spanish_sentences_respect_abbreviations_decimals_and_opening_marks():
    assert sentences(TEXT.split("\n\n")[0]) == [
        "El Sr. García llegó tarde, etc.", "¿Vienes mañana?", "¡Claro que sí!", "Dijo: «Hola a todos»."]
    assert sentences(TEXT.split("\n\n")[1]) == ["Mide 3,14 m., p. ej. esta mesa.", "La Dra. Pérez (EE. UU.) lo confirmó."]


def test_english_sentences():
    assert sentences(TEXT.split("\n\n")[2], "en") == ["Mr. Smith paid $3.50 for it.", 'He said "Wow."', "Then he left."]


def test_units_carry_offsets_into_the_cleaned_text_and_hashes():
    units, skipped = split_units({"id": "doc1", "text": TEXT, "lang": "es"}, min_chars=1)
    kinds = [u["unit_type"] for u in units]
    assert kinds.count("document") == 1 and kinds.count("paragraph") == 3 and kinds.count("sentence") >= 8
    for u in units:
        assert TEXT[u["start"]:u["end"]] == u["text"] and u["doc_id"] == "doc1"
        assert u["content_hash"] == content_hash(u["text"])
    assert [u["unit_id"] for u in units if u["unit_type"] == "paragraph"] == ["doc1#p0", "doc1#p1", "doc1#p2"]
    assert skipped == 0


def test_short_units_are_counted_and_skipped():
    units, skipped = split_units({"id": "d", "text": "Corto.\n\nUn párrafo bastante más largo que el mínimo pedido."},
                                 ("paragraph",), min_chars=20)
    assert [u["text"] for u in units] == ["Un párrafo bastante más largo que el mínimo pedido."] and skipped == 1


def test_split_units_transform_and_bad_types():
    with TestPipeline() as p:
        out = p | beam.Create([{"id": "a", "text": "Primera frase larga del texto. Segunda frase larga del texto."}]) \
            | SplitUnits(("sentence",), min_chars=10)
        assert_that(out | beam.Map(lambda u: u["unit_id"]), equal_to(["a#s0", "a#s1"]))
    with pytest.raises(ValueError):
        SplitUnits(("chapter",))


def test_language_detection():
    assert detect_language("La fotosíntesis es el proceso por el que las plantas producen su alimento.") == "es"
    assert detect_language("Photosynthesis is the process by which plants make their own food.") == "en"
    assert detect_language("ok") is None
