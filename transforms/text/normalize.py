"""Text cleaning: HTML to text, Unicode normalisation, whitespace and control characters.

The cleaned text is what the embedding model sees and what offsets refer to. Paragraphs are kept,
separated by one blank line ("\\n\\n"); inside a paragraph runs of whitespace become one space.
"""
from __future__ import annotations

import re
import unicodedata

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.records import DEAD_LETTER_TAG, dead_letter

# A tag: '<' directly followed by the name (as HTML parses it: "< p" is text) and closed by '>'. Text
# that only names a tag ("[ < HTML ]", a link to a page titled HTML) stays text.
_HTML_HINT = re.compile(r"</?(html|body|div|p|article|section|h[1-6]|br|span|table|ul|li|nav|main|head)\b[^<>]*>",
                        re.IGNORECASE)
# C0/C1 control characters except tab and newline (which are whitespace handled below).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_WHITESPACE = re.compile(r"\s+")
_PARA_SPLIT = re.compile(r"\n\s*\n")


_ANY_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
MARKUP_TAGS_PER_1K = 20  # tags per 1,000 characters from which a text with blank-line paragraphs is markup


def looks_like_html(text: str) -> bool:
    """True when the text is HTML (a page or a fragment), not plain text that mentions or quotes it.

    It needs a block tag, and then either starts with markup, has no blank-line paragraphs (markup
    separates them with tags), or is dense with tags. Plain text quoting an HTML example (LilyPond's
    "Plantillas de lilypond-book", 2 tags per 1,000 characters in 132 paragraphs; GIMP's page on
    slicing an image into an HTML table, 11) keeps its paragraphs."""
    head = text[:5000]
    if not _HTML_HINT.search(head):
        return False
    if head.lstrip().startswith("<") or "\n\n" not in head:
        return True
    return len(_ANY_TAG.findall(head)) * 1000 >= MARKUP_TAGS_PER_1K * len(head)


# Page chrome removed before extraction. trafilatura alone falls back to the whole page when it
# finds no main content, which would turn a navigation-only page into a "document" of menu items.
_BOILERPLATE_XPATH = (
    "//nav | //aside | //script | //style | //noscript | //form | //template"
    " | //*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='search']"
    " | //header[not(ancestor::article or ancestor::main)] | //footer[not(ancestor::article or ancestor::main)]"
    " | //*[contains(translate(@class, 'COKIE', 'cokie'), 'cookie') or contains(translate(@id, 'COKIE', 'cokie'), 'cookie')]"
)


# Chrome that pages mark only by a class or id: a site-wide table of contents or sidebar repeated on
# every page (Texinfo's `tocframe`, DocBook's and MediaWiki's `toc`, Sphinx's `sphinxsidebar`,
# WordPress's `sidebar`), navigation bars (Texinfo's `nav_table`, DocBook's `navheader`/`navfooter`),
# footers that are not <footer> elements, breadcrumbs. Matched per class token or id (readability's
# "unlikely candidates" idea), not as a substring: "stock" or "protocol" are content. Left in,
# trafilatura may take such a sidebar for the main content of a page with little text of its own:
# every section page of LilyPond's manual then "was" the same list of commands.
_CHROME_TOKEN = re.compile(r"^(toc|tocframe|table-of-contents|sidebar|sphinxsidebar|breadcrumbs?|nav|navbar|"
                           r"navigation|navheader|navfooter|footer)$|^(toc|sidebar|nav|footer)[-_]|"
                           r"[-_](toc|sidebar|nav|footer)$", re.IGNORECASE)
# A page whose main text without that chrome is shorter than this (a manual's contents page, an empty
# section stub) is kept as its whole visible text, one block a paragraph, as a crawler's text: else
# every such page would be the same few words ("Índice General"), or trafilatura's guess from the
# sidebar. Template detection then tells its chrome from its text, as for plain-text input.
MIN_MAIN_CHARS = 40
_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
          "td", "th", "pre", "blockquote", "section", "article", "header", "footer", "nav", "aside", "main",
          "figure", "figcaption", "form", "label", "button", "br", "hr", "caption", "address"}
_SKIP = {"script", "style", "noscript", "template", "head"}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _is_chrome(element) -> bool:
    tokens = (element.get("class") or "").split() + (element.get("id") or "").split()
    return any(_CHROME_TOKEN.search(t) for t in tokens)


def strip_page_chrome(html: str, marked: bool = True):
    """HTML -> lxml tree without navigation, banners, headers/footers outside the article, scripts,
    and (`marked`) elements whose class or id marks them as a table of contents, sidebar, navigation
    bar, footer or breadcrumbs."""
    import lxml.html

    # XHTML pages (DocBook, many CMS exports) open with <?xml ... encoding="UTF-8"?>: lxml refuses a
    # str that declares an encoding, which would leave such a page empty.
    tree = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    chrome = tree.xpath(_BOILERPLATE_XPATH)
    if marked:
        chrome += [el for el in tree.xpath("//body//*[@class or @id]") if _is_chrome(el)]
    for element in chrome:
        if element.getparent() is not None:
            element.drop_tree()
    return tree


def html_to_text(html: str) -> str:
    """Main content of an HTML page or fragment, one block per paragraph; '' when none.

    Page chrome (navigation, menus, headers, footers, scripts, cookie banners, tables of contents and
    sidebars marked by class or id) is dropped with lxml, then trafilatura extracts the main content,
    keeping headings, paragraphs, lists and tables. A page with under MIN_MAIN_CHARS of main text is
    its whole visible text instead (block_text, without the unmarked chrome; see MIN_MAIN_CHARS).
    """
    import lxml.etree
    import trafilatura  # imported lazily: heavy, and only HTML inputs need it

    try:
        tree = strip_page_chrome(html)
    except (lxml.etree.ParserError, ValueError):
        return ""
    if not tree.text_content().strip():
        return ""
    _unwrap_source_lines(tree)
    extracted = trafilatura.extract(tree, output_format="txt", include_comments=False,
                                    include_tables=True, favor_recall=True, deduplicate=False) or ""
    text = "\n\n".join(line for line in extracted.splitlines() if line.strip())
    if len(text) >= MIN_MAIN_CHARS:
        return text
    whole = block_text(strip_page_chrome(html, marked=False))
    return whole if len(whole) > len(text) else text


def _unwrap_source_lines(tree) -> None:
    """Line breaks of the HTML source inside a paragraph are spaces to a browser; trafilatura's text
    output keeps them, and each kept line would become a paragraph here ("Download LilyPond for
    Windows from" / "Download. The file will" / …). They become spaces, except inside <pre>."""
    for el in tree.iter():
        in_pre = any(a.tag == "pre" for a in el.iterancestors())  # where el's tail is
        if isinstance(el.tag, str) and el.text and "\n" in el.text and not in_pre and el.tag != "pre":
            el.text = el.text.replace("\n", " ")
        if el.tail and "\n" in el.tail and not in_pre:
            el.tail = el.tail.replace("\n", " ")


def block_text(root) -> str:
    """An lxml tree's visible text as a plain crawler extracts it: one paragraph per block element
    (blank-line separated), whitespace collapsed, scripts and styles dropped (its <body>, if any)."""
    blocks: list[str] = []
    current: list[str] = []

    def flush():
        text = _WHITESPACE.sub(" ", "".join(current)).strip()
        if text:
            blocks.append(text)
        current.clear()

    def walk(el):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _SKIP:
            if el.tail:
                current.append(el.tail)
            return
        block = tag in _BLOCK
        if block:
            flush()
        if el.text and tag:
            current.append(el.text)
        for child in el:
            walk(child)
        if block:
            flush()
        if el.tail:
            current.append(el.tail)

    body = root.find("body")
    walk(body if body is not None else root)
    flush()
    return "\n\n".join(blocks)


def normalize_text(text: str) -> str:
    """Unicode NFC, no control or zero-width characters, collapsed spaces, paragraphs kept."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = _ZERO_WIDTH.sub("", _CONTROL.sub(" ", text))
    paragraphs = (_SPACES.sub(" ", p).strip() for p in _PARA_SPLIT.split(text))
    # Single newlines inside a paragraph are soft line wraps: join them.
    paragraphs = (re.sub(r"\s*\n\s*", " ", p) for p in paragraphs)
    return "\n\n".join(p for p in paragraphs if p)


def clean_text(text: str) -> str:
    """Raw document text (plain or HTML) -> cleaned text ('' when nothing meaningful is left)."""
    if looks_like_html(text):
        text = html_to_text(text)
    return normalize_text(text)


class CleanDocuments(beam.PTransform):
    """Document -> Document with cleaned `text` (and `raw_chars`); empty ones to `dead_letter`."""

    class _Clean(beam.DoFn):
        def __init__(self, min_chars: int):
            self.min_chars = min_chars
            self.html = Metrics.counter("clean", "html_documents")
            self.empty = Metrics.counter("clean", "empty_after_cleaning")
            self.failed = Metrics.counter("clean", "failed")

        def process(self, doc: dict):
            raw = doc.get("text")
            try:
                is_html = looks_like_html(raw)
                cleaned = clean_text(raw)
            except Exception as exc:  # noqa: BLE001 - one poisoned record must not fail its bundle
                self.failed.inc()
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                    "clean", "clean_failed", source=doc.get("source"), line=doc.get("line"),
                    record_id=doc.get("id"), detail=f"{type(exc).__name__}: {str(exc)[:500]}", payload=raw))
                return
            if is_html:
                self.html.inc()
            if len(cleaned) < self.min_chars:
                self.empty.inc()
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(
                    "clean", "empty_after_cleaning", source=doc.get("source"), line=doc.get("line"),
                    record_id=doc["id"],
                    detail=f"{len(cleaned)} chars left of {len(raw)} (minimum {self.min_chars})",
                    payload=raw))
                return
            yield {**doc, "text": cleaned, "raw_chars": len(raw), "is_html": is_html}

    def __init__(self, min_chars: int = 1):
        super().__init__()
        self.min_chars = min_chars

    def expand(self, docs):
        return docs | "Clean" >> beam.ParDo(self._Clean(self.min_chars)).with_outputs(
            DEAD_LETTER_TAG, main="documents")
