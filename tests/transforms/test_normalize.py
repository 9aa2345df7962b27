from transforms.normalize import clean_text, html_to_text, looks_like_html, normalize_text

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


def test_normalize_unicode_controls_and_whitespace():
    decomposed = "Educacio\u0301n\u00a0 \u200bbásica\x00\x07  para   todos"
    assert normalize_text(decomposed) == "Educación básica para todos"


def test_normalize_keeps_paragraphs_and_joins_soft_wraps():
    raw = "Primera línea\ncontinúa aquí.\r\n\r\n\n  Segundo   párrafo.  \n\n\n"
    assert normalize_text(raw) == "Primera línea continúa aquí.\n\nSegundo párrafo."


def test_navigation_only_page_cleans_to_empty():
    nav_only = "<html><body><nav><a href='/'>Inicio</a> <a href='/blog'>Blog</a></nav></body></html>"
    assert clean_text(nav_only) == ""
