"""Word-sequence alignment: a heavily edited copy keeps its word order, two pages quoting one long
passage do not; the alignment clause decides document pairs (and only them) in MergeSignals."""
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines.runner import OfflineDirectRunner
from transforms.matching.alignment import align, sequence_from_text, sequence_to_text, word_sequence
from transforms.matching.knn import floor_of
from transforms.matching.merge import MergeSignals, decide
from transforms.matching.rules import Rule

WORDS = ("menú herramientas opciones documento tabla celda fórmula hoja gráfico estilo página formato "
         "texto insertar campo barra ventana diálogo pulse botón seleccione archivo guardar abrir").split()


def _text(rng, n):
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n))


def test_word_sequence_is_case_folded_ordered_and_round_trips_through_the_index_text():
    seq = word_sequence("Pulse el Botón, pulse el botón.")
    assert seq.dtype == np.uint32 and len(seq) == 6 and seq[0] == seq[3] and seq[2] == seq[5]
    assert np.array_equal(sequence_from_text(sequence_to_text(seq)), seq)
    assert len(word_sequence("")) == 0 and align(word_sequence(""), seq) == (0.0, 0.0)


def test_scattered_word_edits_keep_both_scores_high_a_different_passage_does_not():
    rng = random.Random(3)
    source = _text(rng, 400).split()
    edited = [rng.choice(WORDS) + "x" if rng.random() < 0.3 else w for w in source]   # 30% of words replaced
    aligned, small = align(word_sequence(" ".join(source)), word_sequence(" ".join(edited)))
    assert aligned >= 0.65 and small >= 0.95
    # two pages sharing one long passage (70% of each), the rest different text
    shared = source[:280]
    a, b = shared + _text(rng, 120).split(), _text(rng, 120).split() + shared
    aligned, small = align(word_sequence(" ".join(a)), word_sequence(" ".join(b)))
    assert aligned >= 0.6 and small < 0.85
    assert align(word_sequence(" ".join(source)), word_sequence(_text(rng, 400)))[0] < 0.3
    assert align(source, source, max_words=399) is None   # too long to align: no score, not a wrong one


def test_the_alignment_clause_needs_all_three_scores():
    clause = (0.6, 0.85, 0.7)
    rule = "aligned>=0.6 WITH small_edits>=0.85 WITH cosine>=0.7"
    assert decide(0.75, 0.2, 0.85, 0.6, combined=(0.45, 0.85), alignment=(0.7, 0.9), aligned=clause) == rule
    assert decide(0.75, 0.2, 0.85, 0.6, alignment=(0.7, 0.9)) == ""                     # clause off
    assert decide(0.75, 0.2, 0.85, 0.6, alignment=(0.7, 0.8), aligned=clause) == ""     # a long different run
    assert decide(0.65, 0.2, 0.85, 0.6, alignment=(0.7, 0.9), aligned=clause) == ""     # cosine short
    assert decide(0.75, 0.2, 0.85, 0.6, alignment=None, aligned=clause) == ""           # not computed
    assert decide(0.75, 0.7, 0.85, 0.6, alignment=(0.9, 0.9), aligned=clause) == "jaccard>=0.6"
    assert Rule("aligned >= 0.5 and small_edits >= 0.8")(aligned=0.6, small_edits=0.9)
    assert Rule("aligned >= 0.5").names == {"aligned"} and not Rule("aligned >= 0.5")(cosine=1.0)


def test_kNN_floors_per_unit_type():
    floors = {"document": 0.7, "paragraph": 0.9}
    assert floor_of(floors, "document") == 0.7 and floor_of(floors, "paragraph") == 0.9
    assert floor_of(floors, "sentence") > 1.0 and floor_of(0.8, "sentence") == 0.8


def _unit(uid, vec):
    return {"id": uid, "doc_id": uid.split("#")[0], "unit_type": "paragraph" if "#" in uid else "document",
            "vector": np.asarray(vec, np.float32)}


@pytest.mark.slow
def test_merge_decides_a_heavily_edited_copy_by_its_alignment():
    """Two document pairs at cosine 0.75 (below every other clause): the one whose words align is a
    duplicate, with its scores in the row; a paragraph pair with the same words is not aligned."""
    rng = random.Random(5)
    source = _text(rng, 300).split()
    edited = [rng.choice(WORDS) + "x" if rng.random() < 0.3 else w for w in source]
    c = [0.75, float(np.sqrt(1 - 0.75 ** 2))]
    units = [_unit("a", [1, 0]), _unit("b", c), _unit("x", [1, 0]), _unit("y", c), _unit("a#p0", [1, 0]),
             _unit("b#p0", c)]
    tokens = [("a", word_sequence(" ".join(source))), ("b", word_sequence(" ".join(edited))),
              ("x", word_sequence(" ".join(source))), ("y", word_sequence(_text(rng, 300))),
              ("a#p0", word_sequence(" ".join(source))), ("b#p0", word_sequence(" ".join(edited)))]
    found = [{"doc_a": "a", "doc_b": "b", "method": "knn"}, {"doc_a": "x", "doc_b": "y", "method": "knn"},
             {"doc_a": "a#p0", "doc_b": "b#p0", "method": "knn"}]
    expected = align(tokens[0][1], tokens[1][1])
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        merged = ((p | "Found" >> beam.Create(found),)
                  | MergeSignals(vectors=p | "V" >> beam.Create(units), signatures=p | "S" >> beam.Create([]),
                                 cosine_threshold={"document": 0.85, "paragraph": 0.7},
                                 jaccard_threshold={"document": 0.6, "paragraph": 0.5},
                                 tokens=p | "T" >> beam.Create(tokens),
                                 aligned={"document": (0.6, 0.85, 0.7)}))
        assert_that(merged["pairs"] | beam.Map(lambda r: (r["doc_a"], r["doc_b"], r["aligned"], r["small_edits"], r["rule"])),
                    equal_to([("a", "b", *expected, "aligned>=0.6 WITH small_edits>=0.85 WITH cosine>=0.7"),
                              ("a#p0", "b#p0", None, None, "cosine>=0.7")]))
