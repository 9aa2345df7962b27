"""The run report's pieces: shared-passage highlighting, escaping, score histograms, rendering."""
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from transforms.reporting.run_report import BINS, ScoreHistograms, highlight, render_report, shared_passages


def test_shared_passages_mark_the_copied_run_in_both_texts():
    copied = "la fotosíntesis transforma la energía de la luz solar en energía química"
    a = f"Introducción breve. {copied}. Final distinto del primero."
    b = f"Otro comienzo que no se parece. {copied.upper()}! Y otro final."
    spans_a, spans_b = shared_passages(a, b)
    assert [a[s:e] for s, e in spans_a] == [copied]
    assert [b[s:e].lower() for s, e in spans_b] == [copied]
    assert shared_passages("uno dos tres cuatro cinco", "uno dos tres cuatro cinco") == ([], [])  # < 6 words


def test_highlight_escapes_markup_and_truncates():
    text = "<script>alert(1)</script> copied & pasted text"
    out = highlight(text, [(26, 32)], limit=40)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<mark>copied</mark>" in out and "more characters" in out


def test_score_histograms_count_kept_and_dropped_per_type_and_metric():
    scored = [("document", 0.95, 0.91, True), ("document", 0.42, None, False), ("paragraph", 1.0, 0.0, True)]
    with TestPipeline() as p:
        hist = p | beam.Create(scored) | beam.CombineGlobally(ScoreHistograms())
        expected = {"document|cosine|kept": 19, "document|jaccard|kept": 18, "document|cosine|dropped": 8,
                    "paragraph|cosine|kept": BINS - 1, "paragraph|jaccard|kept": 0}

        def check(results):
            (h,) = results
            assert sorted(h) == sorted(expected), h
            for key, bin_ in expected.items():
                assert h[key][bin_] == 1 and sum(h[key]) == 1, (key, h[key])
        assert_that(hist, check)


def test_render_report_has_every_section_and_no_external_reference():
    summary = {"run_id": "r1", "input": "in.jsonl", "model": "m", "signals": ["knn"], "match_units": ["document"],
               "cosine_threshold": 0.9, "jaccard_threshold": 0.5,
               "counts": {"documents_read": 3, "duplicate_pairs": 1, "by_source": {
                   "in.jsonl": {"records": 3, "processed": 3, "dead_lettered": 0, "reconciled": True}}}}
    words = " ".join(f"palabra{i}" for i in range(12))
    pair = {"doc_a": "a", "doc_b": "b<i>", "cosine": 0.97, "jaccard": 0.8, "granularity": "document",
            "method": "knn", "rule": "cosine>=0.9", "coverage_a": 1.0, "coverage_b": 1.0, "evidence": json.dumps([])}
    page = render_report(summary, {"document|cosine|kept": [0] * 19 + [1]}, [pair],
                         [{"group_id": "g1", "size": 2, "canonical_id": "a", "members": ["a", "b<i>"]}],
                         {"a": words, "b<i>": f"x {words} y"})
    for section in ('id="settings"', 'id="counts"', 'id="distributions"', 'id="groups"', 'id="pairs"'):
        assert section in page
    assert page.count("<svg") == 1 and "<mark>palabra0" in page
    assert "b&lt;i&gt;" in page and "b<i>" not in page
    assert_offline(page)


def assert_offline(page: str):
    """No element of the page loads anything: every src/href is a fragment or data: URI."""
    import lxml.html

    tree = lxml.html.fromstring(page.encode("utf-8"))
    refs = [v for el in tree.iter() if isinstance(el.tag, str) for k, v in el.attrib.items()
            if k.split("}")[-1] in ("src", "href") or k.endswith("href")]
    assert all(v.startswith(("#", "data:")) for v in refs), refs
    assert not tree.xpath("//script|//link|//iframe|//img[not(starts-with(@src, 'data:'))]")


def test_report_lists_a_template_line_once_even_with_two_keys():
    from transforms.reporting.run_report import _one_row_per_text

    rows = [{"key": "a", "text": "7.1. Activar", "documents": 82}, {"key": "b", "text": "7.1. Activar", "documents": 85},
            {"key": "c", "text": "Nota", "documents": 134}]
    assert [(r["text"], r["documents"]) for r in _one_row_per_text(rows)] == [("Nota", 134), ("7.1. Activar", 85)]
