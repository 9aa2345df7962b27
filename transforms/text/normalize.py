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

_HTML_HINT = re.compile(r"<\s*(html|body|div|p|article|section|h[1-6]|br|span|table|ul|li|nav|main|head)\b",
                        re.IGNORECASE)
# C0/C1 control characters except tab and newline (which are whitespace handled below).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[^\S\n]+")
_PARA_SPLIT = re.compile(r"\n\s*\n")


def looks_like_html(text: str) -> bool:
    """True when the text carries HTML block markup (a page or a fragment), not just a '<' sign."""
    return bool(_HTML_HINT.search(text[:5000]))


# Page chrome removed before extraction. trafilatura alone falls back to the whole page when it
# finds no main content, which would turn a navigation-only page into a "document" of menu items.
_BOILERPLATE_XPATH = (
    "//nav | //aside | //script | //style | //noscript | //form | //template"
    " | //*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='search']"
    " | //header[not(ancestor::article or ancestor::main)] | //footer[not(ancestor::article or ancestor::main)]"
    " | //*[contains(translate(@class, 'COKIE', 'cokie'), 'cookie') or contains(translate(@id, 'COKIE', 'cokie'), 'cookie')]"
)


_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def strip_page_chrome(html: str):
    """HTML -> lxml tree without navigation, banners, headers/footers outside the article, scripts."""
    import lxml.html

    # XHTML pages (DocBook, many CMS exports) open with <?xml ... encoding="UTF-8"?>: lxml refuses a
    # str that declares an encoding, which would leave such a page empty.
    tree = lxml.html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    for element in tree.xpath(_BOILERPLATE_XPATH):
        if element.getparent() is not None:
            element.drop_tree()
    return tree


def html_to_text(html: str) -> str:
    """Main content of an HTML page or fragment, one block per paragraph; '' when none.

    Page chrome (navigation, menus, headers, footers, scripts, cookie banners) is dropped with lxml,
    then trafilatura extracts the main content, keeping headings, paragraphs, lists and tables.
    """
    import lxml.etree
    import trafilatura  # imported lazily: heavy, and only HTML inputs need it

    try:
        tree = strip_page_chrome(html)
    except (lxml.etree.ParserError, ValueError):
        return ""
    if not tree.text_content().strip():
        return ""
    extracted = trafilatura.extract(tree, output_format="txt", include_comments=False,
                                    include_tables=True, favor_recall=True, deduplicate=False)
    if not extracted:
        return ""
    return "\n\n".join(line for line in extracted.splitlines() if line.strip())


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
