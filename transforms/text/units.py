"""Splitting cleaned documents into units: the document, its paragraphs and its sentences.

    units = docs | SplitUnits(("document", "paragraph"), min_chars=40)

Unit dict: {"unit_id": "<doc_id>#p3", "doc_id", "unit_type": document|paragraph|sentence,
"unit_index", "start", "end" (character offsets into the cleaned text, text == doc_text[start:end]),
"text", "content_hash" (SHA-1 of the unit text, 16 hex), "lang", "doc_chars", "template"}. Units
shorter than `min_chars` (not the document unit) are counted and skipped.

Template paragraphs (`templates`: keys from transforms.text.templates, a site's navigation, footers and
repeated notices) and their sentences are kept as units with `template: True` (not matched), and
the document unit's `text` is the document without them (its paragraphs joined by blank lines), so
document-level shingles and embeddings describe what is particular to the page; `doc_chars`, the
denominator of passage coverage, is then the length of that text. A page that is all template, or
whose text outside the template is shorter than a unit (`min_chars`), keeps its whole text: a manual's
table-of-contents pages, all sidebar but the heading "Índice General", are not one text.

Sentences come from sentencex (Wikimedia's rule-based segmenter, ~300 languages, Spanish and
English abbreviation lists), per paragraph and in the document's language, plus one rule it lacks:
an opening ¿ or ¡ after sentence-final punctuation always starts a new sentence.
"""
from __future__ import annotations

import hashlib
import re
from typing import Container, Iterable, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.io.bundles import ShardedBundles

UNIT_TYPES = ("document", "paragraph", "sentence")
_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?!\n)[^\n]+)*")
_OPENING_MARK = re.compile(r"(?<=[.!?…»\"”)])\s+(?=[¿¡])")


_UNIT_SUFFIX = re.compile(r"^(.*)#([ps])(\d+)$")


def parse_unit_id(unit_id: str) -> tuple[str, str]:
    """unit id -> (doc id, unit type): 'doc#p3' -> ('doc', 'paragraph'); a document unit's id is its doc id."""
    m = _UNIT_SUFFIX.match(unit_id)
    if not m:
        return unit_id, "document"
    return m.group(1), "paragraph" if m.group(2) == "p" else "sentence"


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph: blocks separated by blank lines, trimmed."""
    spans = []
    for m in _PARAGRAPH.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def sentence_spans(text: str, lang: Optional[str] = None, start: int = 0, end: Optional[int] = None
                   ) -> list[tuple[int, int]]:
    """(start, end) of each sentence of text[start:end], offsets into `text`."""
    import sentencex

    end = len(text) if end is None else end
    chunk = text[start:end]
    spans, cursor = [], 0
    for sentence in sentencex.segment(lang or "es", chunk):
        stripped = sentence.strip()
        if not stripped:
            continue
        pos = chunk.find(stripped, cursor)
        if pos < 0:  # the segmenter changed the text: fall back to the paragraph as one sentence
            return [(start, end)]
        cursor = pos + len(stripped)
        # split before ¿/¡ that follow sentence-final punctuation inside the segment
        piece_start = pos
        for m in _OPENING_MARK.finditer(stripped):
            spans.append((start + piece_start, start + pos + m.start()))
            piece_start = pos + m.end()
        spans.append((start + piece_start, start + cursor))
    return spans


def split_units(doc: dict, unit_types: Iterable[str] = UNIT_TYPES, min_chars: int = 1,
                templates: Optional[Container[str]] = None) -> tuple[list[dict], int]:
    """Document dict (cleaned `text`) -> (units, number of units skipped as too short).

    templates: paragraph keys (transforms.text.templates.paragraph_keys) of the corpus's template text.
    """
    from transforms.text.templates import paragraph_keys

    text, doc_id, lang = doc["text"], doc["id"], doc.get("lang")
    units, skipped = [], 0
    wanted = set(unit_types)
    paragraphs = paragraph_spans(text) if (wanted & {"paragraph", "sentence"} or templates) else []
    flags = [bool(templates) and any(k in templates for k in paragraph_keys(text[s:e])) for s, e in paragraphs]
    content = "\n\n".join(text[s:e] for (s, e), flag in zip(paragraphs, flags) if not flag)
    doc_text = content if any(flags) and len(content) >= min_chars else text

    def unit(kind, index, start, end, prefix, template=False):
        piece = doc_text if kind == "document" else text[start:end]
        return {"unit_id": doc_id if kind == "document" else f"{doc_id}#{prefix}{index}", "doc_id": doc_id,
                "unit_type": kind, "unit_index": index, "start": start, "end": end, "text": piece,
                "content_hash": content_hash(piece), "lang": lang, "doc_chars": len(doc_text),
                "title": doc.get("title"), "url": doc.get("url"), "template": template,
                "raw_hash": doc.get("raw_hash") if kind == "document" else None}

    if "document" in wanted:
        units.append(unit("document", 0, 0, len(text), "d"))
    if "paragraph" in wanted:
        for i, ((s, e), flag) in enumerate(zip(paragraphs, flags)):
            if e - s >= min_chars:
                units.append(unit("paragraph", i, s, e, "p", flag))
            else:
                skipped += 1
    if "sentence" in wanted:
        index = 0
        for (ps, pe), flag in zip(paragraphs, flags):
            for s, e in sentence_spans(text, lang, ps, pe):
                if e - s >= min_chars:
                    units.append(unit("sentence", index, s, e, "s", flag))
                    index += 1
                else:
                    skipped += 1
    return units, skipped


def is_matchable(unit: dict, match_units, min_passage_chars: int) -> bool:
    """Is this Unit matched? Documents, and units of the matched types long enough to be a passage;
    template paragraphs never. Shared by the job (PrepareUnits) and the draft check (service/)."""
    return unit["unit_type"] in match_units and not unit["template"] and (
        unit["unit_type"] == "document" or unit["end"] - unit["start"] >= min_passage_chars)


class SplitUnits(beam.PTransform):
    """Document dict -> Unit dicts of the requested types (see module docstring)."""

    def __init__(self, unit_types: Iterable[str] = ("document",), min_chars: int = 40, templates=None,
                 sharded: bool = False):
        """templates: None, or an AsDict side input {paragraph key: documents} of template paragraphs.
        sharded: split in shards of documents, one per bundle (transforms/io/bundles.py), for a
        runner that would otherwise hold a whole partition's units in its heap."""
        super().__init__()
        self.templates, self.sharded = templates, sharded
        self.unit_types = tuple(unit_types)
        unknown = set(self.unit_types) - set(UNIT_TYPES)
        if unknown or not self.unit_types:
            raise ValueError(f"unit types must be among {UNIT_TYPES}, got {self.unit_types}")
        self.min_chars = min_chars

    def expand(self, docs):
        types, min_chars = self.unit_types, self.min_chars
        counters = {t: Metrics.counter("units", t) for t in UNIT_TYPES}
        short = Metrics.counter("units", "skipped_too_short")
        template_units = Metrics.counter("units", "template")

        def split(doc, templates=None):
            units, skipped = split_units(doc, types, min_chars, templates)
            if skipped:
                short.inc(skipped)
            for u in units:
                counters[u["unit_type"]].inc()
                if u["template"]:
                    template_units.inc()
            return units

        side = {} if self.templates is None else {"templates": self.templates}
        if self.sharded:
            return docs | "Split" >> ShardedBundles(key=lambda d: d["id"], fn=split, **side)
        return docs | "Split" >> beam.FlatMap(split, **side)
