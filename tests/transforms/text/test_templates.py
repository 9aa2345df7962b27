"""Template text: paragraph keys, document frequency over distinct texts, and its use in units."""
import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipelines.runner import OfflineDirectRunner
from transforms.text.templates import FindTemplates, paragraph_key, paragraph_keys
from transforms.text.units import split_units

FOOTER = "Informe un error en la documentación · Otros idiomas: English, Català"


def test_keys_ignore_case_digits_and_page_identifiers():
    assert paragraph_key("Página 3 de 12") == paragraph_key("página 4 de 9")
    a = paragraph_keys("This page is: /text/shared/find_toolbar.xhp")
    b = paragraph_keys("This page is: /text/swriter/guide/index.xhp")
    assert a[0] != b[0] and a[1] == b[1]  # one skeleton, "this page is:"
    assert len(paragraph_keys("ID 123 /a/b x_y z.q")) == 1  # mostly identifiers: no skeleton
    assert len(paragraph_keys("Un párrafo normal sin identificadores.")) == 1


def _page(i, body):
    return {"id": f"p{i:02d}", "text": f"Menú · Inicio\n\n{body}\n\n{FOOTER}"}


def test_find_templates_counts_distinct_texts_and_spares_copied_passages():
    shared = "Un párrafo copiado en tres páginas distintas del sitio, que es reutilización de contenido."
    docs = [_page(i, f"Contenido propio de la página {chr(65 + i)} sobre el tema {chr(97 + i)}.") for i in range(10)]
    docs += [_page(20 + i, f"Texto único {chr(75 + i)}.\n\n{shared}") for i in range(3)]
    copies = [{"id": f"copy{i}", "text": docs[0]["text"]} for i in range(12)]  # one text, counted once
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        rows = p | beam.Create(docs + copies) | FindTemplates(min_docs=10, min_share=0.5)
        assert_that(rows | beam.Map(lambda t: (t["text"], t["documents"], t["example_doc"])),
                    equal_to([("Menú · Inicio", 13, "copy0"), (FOOTER, 13, "copy0")]))


def test_min_docs_zero_disables_detection():
    docs = [_page(i, f"Cuerpo {i}") for i in range(12)]
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        rows = p | beam.Create(docs) | FindTemplates(min_docs=0)
        assert_that(rows, equal_to([]))


def test_units_leave_template_paragraphs_out_of_matching_and_of_the_document_text():
    body = "Un párrafo de contenido propio con más de cuarenta caracteres de largo."
    doc = {"id": "d", "text": f"Menú · Inicio\n\n{body}\n\n{FOOTER}", "lang": "es"}
    templates = {paragraph_key("Menú · Inicio"): 30, paragraph_key(FOOTER): 30}
    units, _ = split_units(doc, ("document", "paragraph"), min_chars=10, templates=templates)
    document = units[0]
    assert document["text"] == body and document["doc_chars"] == len(body)
    assert (document["start"], document["end"]) == (0, len(doc["text"]))
    flags = {u["text"]: u["template"] for u in units[1:]}
    assert flags == {"Menú · Inicio": True, body: False, FOOTER: True}
    plain, _ = split_units(doc, ("document",), templates=None)
    assert plain[0]["text"] == doc["text"] and not plain[0]["template"]


def test_a_page_that_is_all_template_keeps_its_text():
    doc = {"id": "d", "text": f"Menú · Inicio\n\n{FOOTER}"}
    units, _ = split_units(doc, ("document",), templates={paragraph_key("Menú · Inicio"), paragraph_key(FOOTER)})
    assert units[0]["text"] == doc["text"]


def test_a_page_whose_own_text_is_shorter_than_a_unit_keeps_its_text():
    # A manual's table-of-contents page: its sidebar entries are the template of every page of the
    # manual, and all that is left is its heading, the same on the contents page of every manual.
    entries = [f"{i}. Capítulo sobre el tema número {i} del manual" for i in range(1, 6)]
    templates = {paragraph_key(e) for e in entries} | {paragraph_key(FOOTER)}
    doc = {"id": "toc", "text": "\n\n".join(["Índice General", *entries, FOOTER])}
    units, _ = split_units(doc, ("document", "paragraph"), min_chars=40, templates=templates)
    assert units[0]["text"] == doc["text"] and units[0]["doc_chars"] == len(doc["text"])
    own = "Un párrafo de contenido propio, más largo que una unidad de cuarenta caracteres."
    page = {"id": "p", "text": "\n\n".join(["Índice General", own, *entries, FOOTER])}
    units, _ = split_units(page, ("document",), min_chars=40, templates=templates)
    assert units[0]["text"] == "Índice General\n\n" + own  # long enough: only its own text


def test_frame_passages_matching_many_documents_are_dropped_and_real_reuse_kept():
    from transforms.text.templates import DropFramePassages

    frame = [{"doc_a": "a#p1", "doc_b": f"d{i}#p2", "rule": "jaccard>=0.5"} for i in range(9)]
    reuse = [{"doc_a": "b#p0", "doc_b": "c#p3", "rule": "jaccard>=0.5"}, {"doc_a": "b#p0", "doc_b": "e#p1", "rule": "j"}]
    documents = [{"doc_a": "a", "doc_b": f"d{i}", "rule": "cosine"} for i in range(12)]  # never dropped
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        rows = p | beam.Create(frame + reuse + documents)
        kept = rows | DropFramePassages(min_docs=9)
        assert_that(kept | beam.Map(lambda r: (r["doc_a"], r["doc_b"])),
                    equal_to([(r["doc_a"], r["doc_b"]) for r in reuse + documents]))
        framed = rows | "WithFrames" >> DropFramePassages(min_docs=9, with_frames=True)
        assert_that(framed["frames"], equal_to(["a#p1"]), label="Frames")  # what the run document records
        assert_that(framed["rows"] | beam.Map(lambda r: (r["doc_a"], r["doc_b"])),
                    equal_to([(r["doc_a"], r["doc_b"]) for r in reuse + documents]), label="KeptWithFrames")
