"""Site corpora: text as a crawler extracts it, planted copies with gold, and the site scoring."""
import random

from transforms.evaluation.site_corpus import (CATEGORY, near_duplicate_pages, page_text, plant_copies, score_site_run,
                                               share_a_passage)

PAGE = """<html><head><title>T</title><script>var x = 1;</script></head><body>
<nav><a href="/">Inicio</a> · <a href="/es">Otros idiomas</a></nav>
<h1>Barra de búsqueda</h1><p>Puede servirse de la <b>barra</b> de herramientas.</p>
<footer><p>Informe un error</p></footer></body></html>"""


def test_page_text_keeps_navigation_as_its_own_paragraphs_and_drops_scripts():
    assert page_text(PAGE).split("\n\n") == [
        "Inicio · Otros idiomas", "Barra de búsqueda", "Puede servirse de la barra de herramientas.",
        "Informe un error"]


def _pages(n=40):
    words = "alfa beta gama delta épsilon zeta eta theta iota kappa lambda mu nu xi ómicron pi rho sigma".split()
    pages = []
    for i in range(n):
        rng = random.Random(i)  # each page its own words: unrelated pages are unlike character by character too
        body = " ".join(rng.choice(words) + str(j % 7) for j in range(40))
        long_paragraph = f"Párrafo largo y propio de la página número {i}: " + " ".join(rng.choice(words) for _ in range(30))
        text = f"Menú · Inicio\n\nTítulo {i}\n\n{body}.\n\n{long_paragraph}.\n\nInforme un error"
        pages.append({"id": f"site-{i:03d}", "url": f"https://x.invalid/{i}", "title": f"T{i}", "html": "", "text": text})
    return pages


def test_planted_copies_name_their_edit_and_transplants_carry_a_content_paragraph():
    pages = _pages()
    docs, gold = plant_copies(pages, seed=3, per_kind=2, multi=1)
    ids = {d["id"] for d in docs}
    assert all(a in ids and b in ids and kind in CATEGORY for a, b, kind, _ in gold)
    assert sum(kind == "multi_copy" for *_, kind, _ in gold) == 6  # four copies of one page, every two
    by_id = {d["id"]: d for d in docs}
    for donor, new, kind, _ in gold:
        if kind == "transplant":
            moved = [p for p in by_id[new]["text"].split("\n\n") if p in by_id[donor]["text"] and len(p) >= 150]
            assert moved, "the transplanted passage is a long paragraph of the donor"
    assert plant_copies(pages, seed=3, per_kind=2, multi=1) == (docs, gold)  # deterministic


def test_edited_copies_keep_the_site_template_and_change_the_page_text():
    pages = _pages()
    for page in pages:  # a menu line with many words, so a 30 % substitution would surely change it
        page["text"] = page["text"].replace("Menú · Inicio", "Menú Inicio Guía Índice Ayuda Buscar Descargas Foro")
    docs, gold = plant_copies(pages, seed=3, per_kind=3, multi=1)
    by_id = {d["id"]: d for d in docs}
    edited = [(by_id[a], by_id[b]) for a, b, kind, _ in gold
              if kind in ("substitute_30", "substitute_10", "sentence_reorder", "synonym", "sentence_drop")]
    assert len(edited) >= 15
    for original, copy in edited:
        first, *_, last = copy["text"].split("\n\n")
        assert (first, last) == ("Menú Inicio Guía Índice Ayuda Buscar Descargas Foro", "Informe un error")
    assert any(o["text"] != c["text"] for o, c in edited if c["perturbation"] == "substitute_30")


def test_site_scoring_counts_true_and_false_pairs_by_relation():
    pages = _pages(30)
    docs, gold = plant_copies(pages, seed=1, per_kind=1, multi=0)
    exact = next((a, b) for a, b, kind, _ in gold if kind == "exact")
    transplant = next((a, b) for a, b, kind, _ in gold if kind == "transplant")
    rows = [{"doc_a": exact[0], "doc_b": exact[1], "relation": "duplicate"},
            {"doc_a": transplant[0], "doc_b": transplant[1], "relation": "passage"},
            {"doc_a": "site-000", "doc_b": "site-001", "relation": "duplicate"},   # two unrelated pages
            {"doc_a": "site-002", "doc_b": "site-009", "relation": "passage"}]    # they share no passage
    groups = [{"size": 2}, {"size": 2}]
    report = score_site_run(rows, docs, gold, groups)
    assert report["document_precision"] == 0.5 and report["passage_precision"] == 0.5
    assert report["recall"]["exact"]["recall"] == 1.0 and report["recall"]["passage"]["recall"] == 1.0
    assert report["recall"]["heavy"]["recall"] == 0.0
    assert report["largest_group"] == 2 and report["largest_planted_group"] >= 2


BLUE = ["devuelve el componente azul del código de color compuesto especificado.",
        "color value: long integer expression that specifies any composite color code for which to return the blue component.",
        "the color picker dialog details the red, green and blue components of a composite color code."]
RED = ["devuelve el componente rojo del código de color compuesto especificado.",
       "colornumber: long integer expression that specifies any composite color code for which to return the red component.",
       "the color picker dialog details the red, green and blue components of a composite color code."]
OTHER = ["inserta una tabla en el documento actual con el número de filas y columnas que se indique.",
         "las celdas vacías de la tabla se rellenan con el formato predeterminado del estilo de párrafo."]


def test_a_paragraph_with_one_word_changed_is_a_shared_passage_and_an_unrelated_one_is_not():
    # One word of the page's own paragraph changed: the same passage (difflib ratio >= 0.8).
    assert share_a_passage([BLUE[0]], [RED[0]])
    assert not share_a_passage([BLUE[0]], OTHER)
    assert not share_a_passage(BLUE[:1], [RED[0]], min_ratio=0.99)


def test_two_pages_differing_by_a_word_per_paragraph_are_near_duplicates():
    assert near_duplicate_pages(BLUE, RED)
    assert not near_duplicate_pages(BLUE, OTHER + RED[2:])  # one of three paragraphs shared
    assert not near_duplicate_pages(BLUE, [])
