"""Template (boilerplate) text of a site: paragraphs repeated across many documents of the corpus.

    templates = docs | FindTemplates(min_docs=10, min_share=0.02)
    units = docs | SplitUnits(types, templates=beam.pvalue.AsDict(templates | beam.Map(lambda t: (t["key"], t["documents"]))))

A paragraph has up to two keys: its normalised text (lower case, digits as 0, whitespace collapsed)
hashed, so "Página 3 de 12" and "Página 4 de 12" are one template line; and its *skeleton*, the
same without the tokens that carry a page's identifiers (paths, file names, URLs, codes: any token
with a digit, '/', '\\', '_', '@', '=' or an inner '.'), so "This page is: /text/shared/find.xhp" and
"This page is: /text/swriter/index.xhp" are one too. The skeleton is only used when at least three
words and at least half of the tokens remain, so a line that is mostly identifiers is not reduced
to a few common words. Its document frequency counts distinct
document *texts*, so exact copies of one page count once (a page copied ten times does not turn its
own paragraphs into template). A key is a template when it occurs in at least `min_docs` documents
and in at least `min_share` of all distinct documents: navigation bars, footers, "related topics"
headings, repeated notices. This is CCNet's paragraph-hash rule with a frequency floor high enough
that copied passages, which a dedup job must find, are not mistaken for the site's template.

Template row (the `templates` table): {"key", "text" (the text in the smallest document id),
"documents" (document frequency), "share" (of distinct documents), "example_doc" (that id)}.
"""
from __future__ import annotations

import hashlib
import re

import apache_beam as beam
from apache_beam.metrics import Metrics

_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


_IDENTIFIER = re.compile(r"[\d/\\_@=]|\w\.\w")


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def paragraph_key(text: str) -> str:
    """Key of a paragraph for template counting: normalised text (see the module), 16 hex."""
    return _hash(_SPACE.sub(" ", _DIGITS.sub("0", text.lower())).strip())


def paragraph_keys(text: str) -> list[str]:
    """The paragraph's key and, where it differs and is kept (see the module), its skeleton key."""
    keys = [paragraph_key(text)]
    tokens = text.lower().split()
    kept = [t for t in tokens if not _IDENTIFIER.search(t)]
    if len(kept) < len(tokens) and len(kept) >= 3 and 2 * len(kept) >= len(tokens):
        keys.append(_hash("skeleton:" + " ".join(kept)))
    return keys


def is_template(documents: int, total_docs: int, min_docs: int, min_share: float) -> bool:
    return documents >= min_docs and documents >= min_share * total_docs


class FindTemplates(beam.PTransform):
    """Document dicts (cleaned `text`, `id`) -> template rows (see the module docstring).

    min_docs: fewest documents a template paragraph occurs in (0 disables detection);
    min_share: fewest documents as a share of all distinct documents.
    """

    def __init__(self, min_docs: int = 10, min_share: float = 0.02):
        super().__init__()
        self.min_docs, self.min_share = min_docs, min_share

    def expand(self, docs):
        from transforms.text.units import content_hash, paragraph_spans

        min_docs, min_share = self.min_docs, self.min_share
        found = Metrics.counter("templates", "template_paragraphs")

        def keyed_paragraphs(doc):
            """(key, (doc text hash, doc id, paragraph text)), once per key and document."""
            text, seen = doc["text"], set()
            doc_hash = content_hash(text)
            for start, end in paragraph_spans(text):
                for key in paragraph_keys(text[start:end]):
                    if key not in seen:
                        seen.add(key)
                        yield key, (doc_hash, doc["id"], text[start:end])

        paragraphs = docs | "KeyParagraphs" >> beam.FlatMap(keyed_paragraphs)
        # Distinct document texts: the denominator of the share, and the unit of document frequency.
        total = beam.pvalue.AsSingleton(
            docs | "DocTextHash" >> beam.Map(lambda d: content_hash(d["text"])) | "DistinctDocTexts" >> beam.Distinct()
            | "CountDocTexts" >> beam.combiners.Count.Globally())
        frequency = (paragraphs | "KeyDocHash" >> beam.Map(lambda kv: (kv[0], kv[1][0]))
                     | "DistinctKeyDoc" >> beam.Distinct()
                     | "CountDocs" >> beam.combiners.Count.PerKey())
        example = (paragraphs | "KeyExample" >> beam.Map(lambda kv: (kv[0], (kv[1][1], kv[1][2])))
                   | "SmallestDoc" >> beam.CombinePerKey(min))

        def template_rows(element, total_docs):
            key, g = element
            documents = g["documents"][0] if g["documents"] else 0
            if min_docs <= 0 or not is_template(documents, total_docs, min_docs, min_share) or not g["example"]:
                return
            found.inc()
            doc_id, text = g["example"][0]
            yield {"key": key, "text": text, "documents": documents,
                   "share": round(documents / total_docs, 4) if total_docs else 0.0, "example_doc": doc_id}

        return ({"documents": frequency, "example": example} | "JoinExample" >> beam.CoGroupByKey()
                | "Templates" >> beam.FlatMap(template_rows, total_docs=total))


class DropFramePassages(beam.PTransform):
    """Merged unit-pair rows -> the same rows without the matches of *frame* passages.

    Some template text is a sentence frame with each page's own words in it ("Puede acceder a este
    comando desde la barra del menú de la imagen a través de Capa → Pila"): no two pages share its
    exact text, so FindTemplates cannot see it, but its near-duplicates are on many pages. A
    paragraph or sentence unit whose matches reach units of at least `min_docs` other documents is
    such a frame, and none of its matches is passage reuse. Pairs of document units pass through.
    min_docs: 0 keeps every row. with_frames: return {"rows": the kept rows, "frames": the frame unit ids}.
    """

    def __init__(self, min_docs: int, with_frames: bool = False):
        super().__init__()
        self.min_docs, self.with_frames = min_docs, with_frames

    def expand(self, rows):
        from transforms.matching.pair_join import DropRowsNaming
        from transforms.text.units import parse_unit_id

        if self.min_docs <= 0:
            return {"rows": rows, "frames": rows.pipeline | "NoFrames" >> beam.Create([])} if self.with_frames else rows
        min_docs = self.min_docs

        def ends(row):
            (doc_a, kind), (doc_b, _) = parse_unit_id(row["doc_a"]), parse_unit_id(row["doc_b"])
            if kind != "document":
                yield row["doc_a"], doc_b
                yield row["doc_b"], doc_a

        frames = (rows | "UnitPartnerDocs" >> beam.FlatMap(ends) | "DistinctPartners" >> beam.Distinct()
                  | "CountPartners" >> beam.combiners.Count.PerKey()
                  | "Frames" >> beam.Filter(lambda kv: kv[1] >= min_docs) | "FrameKeys" >> beam.Keys())
        # One keyed join per end: no worker holds the set of frames.
        kept = rows | "DropFrames" >> DropRowsNaming(frames, namespace="templates",
                                                     counter="frame_passage_matches_dropped")
        return {"rows": kept, "frames": frames} if self.with_frames else kept
