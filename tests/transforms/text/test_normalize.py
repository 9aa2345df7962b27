import pytest

from transforms.text.normalize import clean_text, html_to_text, looks_like_html, normalize_text

PAGE = """<html><head><title>Curso</title><script>var tracking = "NO-DEBE-APARECER";</script></head><body>
<nav><ul><li><a href="/">Inicio</a></li><li><a href="/cursos">Cursos</a></li></ul></nav>
<div class="cookie-banner">Usamos cookies para mejorar tu experiencia. Aceptar</div>
<main><article><h1>La fotosíntesis</h1>
<p>La fotosíntesis es el proceso mediante el cual las plantas convierten la luz solar en energía química.</p>
<p>Ocurre en los cloroplastos, donde la clorofila absorbe la luz.</p></article></main>
<footer>© 2026 Academia Ejemplo. Todos los derechos reservados.</footer></body></html>"""


def test_html_keeps_heading_and_paragraphs_and_drops_boilerplate():
    text = html_to_text(PAGE)
    assert text.split("\n\n")[0] == "La fotosíntesis"
    assert "convierten la luz solar en energía química." in text
    assert "clorofila absorbe la luz." in text
    for boilerplate in ("NO-DEBE-APARECER", "Inicio", "cookies", "derechos reservados"):
        assert boilerplate not in text


def test_html_detection_ignores_a_lone_less_than_sign():
    assert looks_like_html(PAGE)
    assert not looks_like_html("si a < b y b > c entonces nada")


def test_text_that_names_a_tag_is_not_html():
    """LilyPond's page text links the previous page, titled HTML: "[ < HTML ]". Taken for markup, the
    page went through the HTML cleaner and its paragraphs were joined into one line."""
    nav = "[ << lilypond-book ]\n\n[ < HTML ]\n\n[ Subir : Integrar música y texto ]\n\n3.2.4 DocBook\n\nPara insertar > fragmentos"
    assert not looks_like_html(nav)
    assert clean_text(nav).count("\n\n") == 4
    assert looks_like_html("<P class='x'>Hola</P>") and looks_like_html("uno<br/>dos") and looks_like_html("</div>")


def test_plain_text_quoting_an_html_example_keeps_its_paragraphs():
    """LilyPond's "Plantillas de lilypond-book" page, as text, quotes an HTML template: its
    paragraphs must stay paragraphs (as HTML, every paragraph of the page was joined into one)."""
    prose = "\n\n".join(f"Párrafo {i} de la página sobre plantillas, con bastante texto propio." for i in range(12))
    quoted = prose + "\n\n<html>\n<body>\n<p>Documentos para lilypond-book</p>\n</body>\n</html>\n\n" + prose
    assert not looks_like_html(quoted)
    assert clean_text(quoted).count("\n\n") >= 24
    fragment = "Intro\n\n" + "".join(f"<p>uno {i}</p><p>dos</p>" for i in range(10))
    assert looks_like_html(fragment)


def test_normalize_unicode_controls_and_whitespace():
    decomposed = "Educacio\u0301n\u00a0 \u200bbásica\x00\x07  para   todos"
    assert normalize_text(decomposed) == "Educación básica para todos"


def test_normalize_keeps_paragraphs_and_joins_soft_wraps():
    raw = "Primera línea\ncontinúa aquí.\r\n\r\n\n  Segundo   párrafo.  \n\n\n"
    assert normalize_text(raw) == "Primera línea continúa aquí.\n\nSegundo párrafo."


def test_navigation_only_page_cleans_to_empty():
    nav_only = "<html><body><nav><a href='/'>Inicio</a> <a href='/blog'>Blog</a></nav></body></html>"
    assert clean_text(nav_only) == ""


def _manual_page(main: str) -> str:
    """A Texinfo/DocBook-style manual page: navigation tables, a footer div and the manual's contents
    in a sidebar, all marked by class or id only (LilyPond's manuals)."""
    sidebar = "".join(f"<li><a href='s{i}.html'><code>\\comando{i}</code> Sección {i} del manual</a></li>"
                      for i in range(30))
    nav = "<table class='nav_table'><tr><td>[ &lt;&lt; Anterior ]</td><td>[Arriba][Índice]</td></tr></table>"
    return (f"<html><body><div id='main'>{nav}{main}{nav}<div id='footer'><p>Esta página corresponde a la "
            f"versión 2.24 (rama estable).</p></div></div><div id='tocframe'><div class='contents'>"
            f"<ul class='toc'>{sidebar}</ul></div></div></body></html>")


def test_sidebars_navigation_tables_and_footers_marked_by_class_or_id_are_chrome():
    page = _manual_page("<h2>5.2 Explicación del manual</h2><p>Esta sección explica cómo leer la referencia "
                        "de funcionamiento interno del programa.</p>")
    assert html_to_text(page) == ("5.2 Explicación del manual\n\nEsta sección explica cómo leer la referencia de "
                                  "funcionamiento interno del programa.")
    assert "autotoc" in html_to_text("<html><body><article><h1>Título</h1><p class='autotoc'>Un párrafo con "
                                     "autotoc en su clase, que no es una tabla de contenidos.</p></article></body></html>")


def test_a_page_with_too_little_main_text_is_its_whole_visible_text():
    # an empty section stub: its heading alone would be the same few words as any other stub's, and
    # trafilatura on the whole page takes the sidebar for its content
    stub = html_to_text(_manual_page("<h3>2.8.3 Notación gráfica</h3>"))
    assert stub.split("\n\n")[:3] == ["[ << Anterior ]", "[Arriba][Índice]", "2.8.3 Notación gráfica"]
    assert "Sección 29 del manual" in stub and "Esta página corresponde" in stub
    assert html_to_text(_manual_page("<h1>Índice General</h1>")) != html_to_text(
        _manual_page("<h1>Índice General</h1>").replace("Sección", "Capítulo"))


def test_line_breaks_of_the_source_inside_a_paragraph_are_spaces_and_pre_keeps_its_lines():
    page = ("<html><body><article><h2>1.2 Instalación en Windows</h2><p>Descargue LilyPond para Windows desde\n"
            "<a href='d.html'>Descargas</a>. El archivo\nserá un ZIP llamado\n<tt>lilypond.zip</tt>.</p>"
            "<pre>\\relative {\n  c4 d e\n}</pre></article></body></html>")
    assert clean_text(page).split("\n\n") == [
        "1.2 Instalación en Windows",
        "Descargue LilyPond para Windows desde Descargas. El archivo será un ZIP llamado lilypond.zip.",
        "\\relative {", "c4 d e", "}"]


@pytest.mark.slow
def test_a_poisoned_record_goes_to_dead_letters_and_the_rest_through_in_multi_processing_mode(tmp_path):
    import json

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.runner import OfflineDirectRunner
    from transforms.text.normalize import CleanDocuments

    docs = [{"id": f"d{i}", "text": f"Texto válido número {i} con palabras suficientes para pasar."} for i in range(40)]
    docs.insert(17, {"id": "poison", "text": b"\xff bytes where text belongs"})  # makes the cleaner raise
    options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    with beam.Pipeline(runner=OfflineDirectRunner(), options=options) as p:
        out = p | beam.Create(docs, reshuffle=True) | CleanDocuments(min_chars=5)
        _ = out.documents | "Ids" >> beam.Map(lambda d: d["id"]) | "Ok" >> beam.io.WriteToText(str(tmp_path / "ok"))
        _ = (out.dead_letter | "Json" >> beam.Map(json.dumps)
             | "Dead" >> beam.io.WriteToText(str(tmp_path / "dead")))
    ok = sorted(line for f in tmp_path.glob("ok*") for line in f.read_text().splitlines())
    dead = [json.loads(line) for f in tmp_path.glob("dead*") for line in f.read_text().splitlines()]
    assert ok == sorted(f"d{i}" for i in range(40))  # nothing else lost with the poisoned record
    assert [(d["record_id"], d["stage"], d["reason"]) for d in dead] == [("poison", "clean", "clean_failed")]
    assert dead[0]["detail"].startswith("TypeError")


def test_xhtml_page_with_an_xml_declaration_keeps_its_content():
    """DocBook/XHTML pages start with an XML declaration naming their encoding; they were cleaned to
    nothing (all 351 gimp-help-es pages dead-lettered as empty_after_cleaning)."""
    from transforms.text.normalize import clean_text

    page = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
            'Transitional//EN">\n<html><head><title>Abrir</title></head><body><div class="sect2"><h3>2.4. Abrir archivo</h3>'
            '<p>El comando Abrir activa un diálogo que le permite seleccionar una imagen que cargar desde su disco '
            'duro o desde un medio externo.</p></div></body></html>')
    assert "El comando Abrir activa un diálogo" in clean_text(page)
