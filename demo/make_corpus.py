"""Builds demo/corpus.jsonl and demo/gold.tsv from demo/articles.py (deterministic).

    python demo/make_corpus.py

Planted duplicate kinds (gold `kind`, `is_duplicate`):
exact (verbatim copy), html (same text inside another site's HTML and boilerplate), light (light
edit), heavy (rewrite / paraphrase), shared_paragraph (one paragraph copied into a different
article) — all positives; same_topic (same subject, independently written) — hard negatives.
"""
import html
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from articles import BASE, EXACT, HEAVY, HTML, LIGHT, SAME_TOPIC, SHARED  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SITES = [
    ("Aula Abierta", "https://aula-abierta.example.org"),
    ("Saber Más Academia", "https://sabermas.example.com"),
]


def lang_of(doc_id):
    return doc_id.split("-", 1)[0]


def html_page(title, text, site, url):
    """The article inside a full page of navigation, banner, sidebar and footer boilerplate."""
    name, _ = site
    paras = "\n".join(f"      <p>{html.escape(p)}</p>" for p in text.split("\n\n"))
    return f"""<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8"><title>{html.escape(title)} | {name}</title>
<script>window.dataLayer = window.dataLayer || []; function gtag(){{dataLayer.push(arguments);}}</script>
<style>body{{font-family:sans-serif}} .cookie{{position:fixed;bottom:0}}</style></head>
<body>
  <div class="cookie-banner" id="cookies">Usamos cookies propias y de terceros para mejorar tu experiencia.
    <button>Aceptar</button> <button>Configurar</button></div>
  <header><a href="/" class="logo">{name}</a>
    <nav><ul><li><a href="/">Inicio</a></li><li><a href="/cursos">Cursos</a></li><li><a href="/blog">Blog</a></li>
    <li><a href="/contacto">Contacto</a></li></ul></nav></header>
  <main><article>
      <h1>{html.escape(title)}</h1>
{paras}
  </article>
  <aside><h3>Artículos relacionados</h3><ul><li><a href="/a">Diez consejos para estudiar mejor</a></li>
    <li><a href="/b">Cómo preparar un examen oral</a></li></ul></aside></main>
  <footer><p>© 2026 {name}. Todos los derechos reservados.</p>
    <p><a href="/privacidad">Política de privacidad</a> · <a href="/aviso-legal">Aviso legal</a></p></footer>
</body></html>"""


def main():
    docs, gold = [], []
    day = 1

    def add(doc_id, title, text, site_url, published):
        docs.append({"id": doc_id, "title": title, "text": text, "url": f"{site_url}/{doc_id}",
                     "lang": lang_of(doc_id), "published_at": published})

    base_site = "https://cursos.example.org"
    for doc_id, (title, text) in BASE.items():
        add(doc_id, title, text, base_site, f"2025-01-{day:02d}")
        day = day % 28 + 1
    for base_id, copy_id in EXACT.items():
        title, text = BASE[base_id]
        add(copy_id, title, text, "https://blog.example.net", "2025-06-01")
        gold.append((base_id, copy_id, "exact", 1))
    for i, (base_id, copy_id) in enumerate(HTML.items()):
        title, text = BASE[base_id]
        site = SITES[i % len(SITES)]
        add(copy_id, title, html_page(title, text, site, f"{site[1]}/{copy_id}"), site[1], "2025-07-01")
        gold.append((base_id, copy_id, "html", 1))
    for base_id, (copy_id, text) in LIGHT.items():
        add(copy_id, BASE[base_id][0], text, "https://apuntes.example.com", "2025-08-01")
        gold.append((base_id, copy_id, "light", 1))
    for base_id, (copy_id, text) in HEAVY.items():
        add(copy_id, BASE[base_id][0], text, "https://apuntes.example.com", "2025-09-01")
        gold.append((base_id, copy_id, "heavy", 1))
    for base_id, (new_id, title, parts) in SHARED.items():
        base_paras = BASE[base_id][1].split("\n\n")
        text = "\n\n".join(base_paras[p] if isinstance(p, int) else p for p in parts)
        add(new_id, title, text, "https://campus.example.edu", "2025-10-01")
        gold.append((base_id, new_id, "shared_paragraph", 1))
    for a, b in SAME_TOPIC:
        gold.append((a, b, "same_topic", 0))
    # Verbatim copies (exact, html) stand in for their base: a pair with the base holds with the copy.
    copies = {}
    for base_id, copy_id in list(EXACT.items()) + list(HTML.items()):
        copies.setdefault(base_id, []).append(copy_id)
    for a, b, kind, dup in list(gold):
        for base, other in ((a, b), (b, a)):
            for copy_id in copies.get(base, []):
                if copy_id != other and (kind not in ("exact", "html")):
                    gold.append((copy_id, other, kind, dup))

    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)), "duplicate ids in the demo corpus"
    with open(os.path.join(HERE, "corpus.jsonl"), "w", encoding="utf-8") as out:
        for d in docs:
            out.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "gold.tsv"), "w", encoding="utf-8") as out:
        out.write("id_a\tid_b\tkind\tis_duplicate\n")
        for a, b, kind, dup in gold:
            a, b = min(a, b), max(a, b)
            out.write(f"{a}\t{b}\t{kind}\t{dup}\n")
    print(f"{len(docs)} documents, {sum(g[3] for g in gold)} duplicate pairs, "
          f"{sum(1 - g[3] for g in gold)} same-topic negatives")


if __name__ == "__main__":
    main()
