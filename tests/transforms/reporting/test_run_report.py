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
    reuse = dict(pair, doc_b="c", relation="passage", rule="document: containment>=0.25 WITH cosine>=0.55",
                 coverage_a=0.9, coverage_b=0.2)
    page = render_report(summary, {"document|cosine|kept": [0] * 19 + [1]}, [pair],
                         [{"group_id": "g1", "size": 2, "canonical_id": "a", "members": ["a", "b<i>"]}],
                         {"a": words, "b<i>": f"x {words} y", "c": f"{words} and much more of its own"}, (), [reuse])
    for section in ('id="settings"', 'id="counts"', 'id="distributions"', 'id="groups"', 'id="pairs"',
                    'id="passages"'):
        assert section in page
    assert page.count("<svg") == 1 and "<mark>palabra0" in page
    import lxml.html

    tree = lxml.html.fromstring(page)
    shown = tree.xpath('//section[@id="passages"]//div[@class="pair"]')
    assert len(shown) == 1 and "90% / 20%" in shown[0].text_content() and shown[0].xpath(".//mark")
    assert len(tree.xpath('//section[@id="pairs"]//div[@class="pair"]')) == 1
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


def test_report_shows_every_decision_clause_and_sums_many_sources():
    """The settings table names each clause the decision uses (not only the two thresholds), and a
    run over many files gets a total row plus the files that do not reconcile, not a row per file."""
    by_source = {f"p{i:03d}.html": {"records": 1, "processed": 1, "dead_lettered": 0, "reconciled": True}
                 for i in range(127)}
    by_source["p050.html"] = {"records": 2, "processed": 1, "dead_lettered": 0, "reconciled": False}
    summary = {"run_id": "r1", "input": "*.html", "model": "m", "signals": ["knn"], "match_units": ["document"],
               "cosine_threshold": 0.85, "jaccard_threshold": 0.6, "combined": {"jaccard": 0.45, "cosine": 0.8},
               "aligned": {"aligned": 0.65, "small_edits": 0.85, "cosine": 0.55}, "cosine_margin": 0.02,
               "duplicate_coverage": 0.5, "templates": {"min_docs": 5, "min_share": 0.02}, "rule": None,
               "counts": {"documents_read": 128, "by_source": by_source}}
    page = render_report(summary, {}, [], [], {})
    import lxml.html

    tree = lxml.html.fromstring(page)
    settings = {tr.xpath("string(th)"): tr.xpath("string(td)") for tr in tree.xpath('//section[@id="settings"]//tr')}
    assert json.loads(settings["aligned"]) == summary["aligned"]
    assert json.loads(settings["combined"]) == summary["combined"]
    assert settings["cosine_margin"] == "0.02" and settings["rule"] == "–" and "templates" in settings
    rows = tree.xpath('//table[@id="sources"]/tbody/tr')
    assert len(rows) == 2 and rows[0].xpath("string(td[1])") == "p050.html"
    assert [c.text_content() for c in rows[1].xpath("td")] == ["128", "127", "0", "NO"]
    assert "all 127 sources (126 reconciled" in rows[1].xpath("string(th)")
