"""The run report: one self-contained HTML page per run, `<output>/report.html`.

    p | BuildRunReport(output, summary=summary, pairs=pairs, groups=groups, docs=docs, scored=scored)

Inputs: `summary` the singleton summary dict (WriteSummary's output); `pairs` document-pair rows of
the duplicates table; `groups` group rows; `docs` cleaned Document dicts; `scored` the
(unit_type, cosine, jaccard, kept) tuples of every candidate MergeSignals scored.

Sections: run settings, counts per stage and per source, score distributions (every scored
candidate, kept vs dropped, per unit type, with the thresholds), the biggest groups, and the top pairs
side by side with the shared passages highlighted. Charts are inline SVG drawn by matplotlib with
text as paths: no script, stylesheet or font is fetched, so the page works offline. Only bounded data
reaches the single writing step: histograms, the top pairs and groups, and the texts of those pairs.
"""
from __future__ import annotations

import difflib
import html
import io
import json
import re

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.io.sinks import join_path
from transforms.reporting.report import source_totals

BINS = 20
MAX_SHOWN_CHARS = 4000
MAX_SOURCE_ROWS = 10  # past this many input files the sources table shows a total and the unreconciled ones
# Settings shown, in this order: what was read, then every clause the decision rule uses.
SETTINGS = ("input", "input_files", "cosine_threshold", "jaccard_threshold", "combined", "aligned", "containment", "common_source_cosine",
            "knn_floors",
            "cosine_margin", "duplicate_coverage", "unit_cosine_threshold", "unit_jaccard_threshold",
            "unit_cosine_margin", "min_passage_chars", "frame_min_docs", "templates", "rule", "unit_rule",
            "canonical_policy", "embedding", "vector_store", "es_index", "mode", "index_options", "knn", "lsh", "output")
MIN_RUN_WORDS = 6  # a highlighted shared passage is at least this many consecutive words

STAGES = (  # counts shown in pipeline order: (summary key, label)
    ("documents_read", "records read"), ("dead_letter_read", "dead letters: unreadable records"),
    ("dead_letter_duplicate_id", "dead letters: duplicate ids"), ("dead_letter_clean", "dead letters: empty after cleaning"),
    ("documents_cleaned", "documents cleaned"), ("template_paragraphs", "template paragraphs found"),
    ("units", "units split"), ("template_units", "template units (not matched)"), ("vectors", "vectors embedded"),
    ("indexed", "vectors indexed"), ("dead_letter_es", "dead letters: index rejected"),
    ("signatures", "MinHash signatures"), ("knn_pairs", "kNN candidate pairs"), ("minhash_pairs", "MinHash candidate pairs"),
    ("lsh_oversized_buckets", "oversized LSH buckets"), ("unit_matches", "unit matches kept"),
    ("duplicate_pairs", "document pairs (duplicates and passage reuse)"), ("passage_pairs", "of which passage reuse"),
    ("groups", "duplicate groups"),
)


class ScoreHistograms(beam.CombineFn):
    """(unit_type, cosine, jaccard, kept) -> {"<unit_type>|<metric>|<kept|dropped>": [BINS counts over 0..1]}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, element):
        kind, cos, jac, kept = element
        for metric, value in (("cosine", cos), ("jaccard", jac)):
            if value is None:
                continue
            key = f"{kind}|{metric}|{'kept' if kept else 'dropped'}"
            counts = acc.setdefault(key, [0] * BINS)
            counts[min(BINS - 1, max(0, int(float(value) * BINS)))] += 1
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for key, counts in acc.items():
                have = out.setdefault(key, [0] * BINS)
                for i, c in enumerate(counts):
                    have[i] += c
        return out

    def extract_output(self, acc):
        return dict(sorted(acc.items()))


def _pair_strength(row: dict) -> tuple:
    return ((row.get("cosine") or 0.0) + (row.get("jaccard") or 0.0), row["doc_a"], row["doc_b"])


def _passage_strength(row: dict) -> tuple:
    return (max(row.get("coverage_a") or 0.0, row.get("coverage_b") or 0.0), row.get("cosine") or 0.0,
            row["doc_a"], row["doc_b"])


def _is_passage(row: dict) -> bool:
    return row.get("relation") == "passage"


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\w+", text)]


def shared_passages(text_a: str, text_b: str, min_words: int = MIN_RUN_WORDS):
    """Character spans ([(start, end)] in a, [(start, end)] in b) of runs of >= min_words identical
    consecutive words (case-insensitive), found with difflib on the word sequences."""
    wa, wb = _word_spans(text_a), _word_spans(text_b)
    seq_a = [text_a[s:e].lower() for s, e in wa]
    seq_b = [text_b[s:e].lower() for s, e in wb]
    matcher = difflib.SequenceMatcher(None, seq_a, seq_b, autojunk=False)
    spans_a, spans_b = [], []
    for block in matcher.get_matching_blocks():
        if block.size >= min_words:
            spans_a.append((wa[block.a][0], wa[block.a + block.size - 1][1]))
            spans_b.append((wb[block.b][0], wb[block.b + block.size - 1][1]))
    return spans_a, spans_b


def highlight(text: str, spans, limit: int = MAX_SHOWN_CHARS) -> str:
    """Escaped HTML of text[:limit] with the given character spans wrapped in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, limit)
        if start >= end:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:limit]))
    if len(text) > limit:
        out.append(f" <em>[… {len(text) - limit} more characters]</em>")
    return "".join(out)


def histogram_svgs(histograms: dict, thresholds: dict) -> list[tuple[str, str]]:
    """{key: counts} -> [(title, inline SVG)], one chart per (unit type, metric), kept vs dropped stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "dedup-report", "font.size": 9})
    charts = []
    panels = sorted({tuple(k.split("|")[:2]) for k in histograms})
    edges = np.linspace(0.0, 1.0, BINS + 1)
    for kind, metric in panels:
        kept = np.asarray(histograms.get(f"{kind}|{metric}|kept", [0] * BINS))
        dropped = np.asarray(histograms.get(f"{kind}|{metric}|dropped", [0] * BINS))
        fig, ax = plt.subplots(figsize=(4.6, 2.6))
        ax.bar(edges[:-1], dropped, width=1 / BINS, align="edge", color="#b8c4d6", label="dropped", edgecolor="white")
        ax.bar(edges[:-1], kept, width=1 / BINS, align="edge", bottom=dropped, color="#d9534f", label="kept",
               edgecolor="white")
        t = thresholds.get((kind, metric))
        if t is not None:
            ax.axvline(t, color="#333", linestyle="--", linewidth=1)
            ax.text(t, ax.get_ylim()[1] * 0.95, f" {t:g}", va="top", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel(metric)
        ax.set_ylabel("candidate pairs")
        ax.set_title(f"{kind} {metric} (n={int(kept.sum() + dropped.sum())})")
        ax.legend(loc="upper left", frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
        svg = re.sub(r"<metadata>.*?</metadata>", "", buf.getvalue(), flags=re.S)  # RDF licence block
        charts.append((f"{kind} {metric}", svg[svg.index("<svg"):]))
    return charts


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Duplicates report · {{ s.run_id }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { border-bottom: 2px solid #d9534f; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; } .chart { border: 1px solid #ddd; padding: 4px; }
.pair { border: 1px solid #ccc; margin: 14px 0; padding: 8px; } .sides { display: flex; gap: 12px; }
.side { flex: 1; white-space: pre-wrap; background: #fafafa; padding: 8px; font-size: 13px; max-height: 420px; overflow: auto; }
mark { background: #ffd24d; } .meta { color: #555; font-size: 13px; }
</style></head><body>
<h1>Near-duplicate report</h1>
<p class="meta">run <b>{{ s.run_id }}</b> · input {{ s.input }} · model {{ s.model }} · signals {{ s.signals|join(", ") }} ·
matched units {{ s.match_units|join(", ") }}</p>

<section id="settings"><h2>Settings</h2>
<table><tbody>
{% for k, v in settings %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</tbody></table></section>

<section id="counts"><h2>Counts per stage</h2>
<table id="stage-counts"><thead><tr><th>stage</th><th>count</th></tr></thead><tbody>
{% for label, n in stages %}<tr><td>{{ label }}</td><td class="n">{{ "{:,}".format(n) }}</td></tr>{% endfor %}
</tbody></table>
<table id="sources"><thead><tr><th>source</th><th>records</th><th>processed</th><th>dead-lettered</th><th>reconciled</th></tr></thead><tbody>
{% for src, r in sources %}<tr><td>{{ src }}</td><td class="n">{{ r.records }}</td><td class="n">{{ r.processed }}</td>
<td class="n">{{ r.dead_lettered }}</td><td>{{ "yes" if r.reconciled else "NO" }}</td></tr>{% endfor %}
{% if sources_total %}<tr class="total"><th>all {{ sources_total.sources }} sources ({{ sources_total.reconciled }} reconciled{% if sources %}; only the others listed{% endif %})</th>
<td class="n">{{ sources_total.records }}</td><td class="n">{{ sources_total.processed }}</td>
<td class="n">{{ sources_total.dead_lettered }}</td><td>{{ "yes" if sources_total.reconciled == sources_total.sources else "NO" }}</td></tr>{% endif %}
</tbody></table></section>

<section id="distributions"><h2>Score distributions</h2>
<p class="meta">Every candidate pair scored, kept (red) or dropped by the decision rule; dashed line: threshold.</p>
<div class="charts">{% for title, svg in charts %}<figure class="chart" data-title="{{ title }}">{{ svg|safe }}</figure>{% endfor %}</div>
{% if not charts %}<p>No candidate pairs were scored.</p>{% endif %}
</section>

<section id="templates"><h2>Template text</h2>
<p class="meta">Paragraphs repeated across many documents (the site's navigation, footers, notices): never
matched, left out of document-level comparison. The {{ templates|length }} most frequent of {{ s.get("counts", {}).get("template_paragraphs", 0) }}.</p>
<table id="template-table"><thead><tr><th>documents</th><th>share</th><th>text</th><th>e.g. in</th></tr></thead><tbody>
{% for t in templates %}<tr><td class="n">{{ t.documents }}</td><td class="n">{{ "{:.0%}".format(t.share) }}</td>
<td>{{ t.text|truncate(160) }}</td><td>{{ t.example_doc }}</td></tr>{% endfor %}
</tbody></table>{% if not templates %}<p>No template text found.</p>{% endif %}</section>

<section id="groups"><h2>Biggest groups</h2>
<table id="group-table"><thead><tr><th>group</th><th>size</th><th>canonical</th><th>members</th></tr></thead><tbody>
{% for g in groups %}<tr><td>{{ g.group_id }}</td><td class="n">{{ g.size }}</td><td>{{ g.canonical_id }}</td>
<td>{{ g.members|join(", ") }}</td></tr>{% endfor %}
</tbody></table>{% if not groups %}<p>No duplicate groups.</p>{% endif %}</section>

{% macro pair_list(rows) %}{% for p in rows %}<div class="pair">
<p class="meta"><b>{{ p.doc_a }}</b> ↔ <b>{{ p.doc_b }}</b> · {{ p.get("relation") or "duplicate" }} · cosine {{ p.cosine_s }} · Jaccard {{ p.jaccard_s }} ·
{{ p.granularity }} · found by {{ p.method }} · rule <code>{{ p.rule }}</code> · coverage {{ p.coverage_s }}</p>
<div class="sides"><div class="side">{{ p.html_a|safe }}</div><div class="side">{{ p.html_b|safe }}</div></div>
</div>{% endfor %}{% endmacro %}
<section id="pairs"><h2>Top pairs</h2>
<p class="meta">Whole-document duplicates, strongest first (cosine + Jaccard).</p>
{{ pair_list(pairs) }}{% if not pairs %}<p>No duplicate pairs.</p>{% endif %}
</section>

<section id="passages"><h2>Passage reuse</h2>
<p class="meta">A passage of one document reused in another, the most of a document first (larger coverage);
these pairs join no group.</p>
{{ pair_list(passages) }}{% if not passages %}<p>No passage reuse.</p>{% endif %}
</section>
</body></html>
"""


def _source_rows(by_source: dict, listed: int = MAX_SOURCE_ROWS) -> tuple[list, dict | None]:
    """(rows shown, total row or None): every source when there are few; past `listed`, the sources
    that do not reconcile (at most `listed`) and a total row (summary.json keeps every source)."""
    rows = sorted(by_source.items())
    if len(rows) <= listed:
        return rows, None
    return [(k, v) for k, v in rows if not v.get("reconciled")][:listed], source_totals(by_source)


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _one_row_per_text(templates) -> list[dict]:
    """Template rows, most frequent first, one per text (a line can be template by two keys)."""
    rows = {}
    for t in sorted(templates, key=lambda t: (-t["documents"], t["key"])):
        rows.setdefault(t["text"], t)
    return list(rows.values())


def render_report(summary: dict, histograms: dict, top_pairs: list[dict], top_groups: list[dict],
                  texts: dict[str, str], templates: list[dict] = (), top_passages: list[dict] = ()) -> str:
    """The report page as a string. `top_pairs`: the strongest duplicate rows, `top_passages`: the
    passage-reuse rows shown; `texts`: {doc_id: cleaned text} for the documents of both;
    `templates`: the most frequent template rows."""
    import jinja2

    counts = summary.get("counts", {})
    stages = [(label, counts[key]) for key, label in STAGES if key in counts]
    cos_doc, jac_doc = summary.get("cosine_threshold"), summary.get("jaccard_threshold")
    thresholds = {}
    for kind in summary.get("match_units") or ["document"]:
        doc_level = kind == "document"
        thresholds[(kind, "cosine")] = cos_doc if doc_level else summary.get("unit_cosine_threshold")
        thresholds[(kind, "jaccard")] = jac_doc if doc_level else summary.get("unit_jaccard_threshold")
    def side_by_side(row):
        a, b = texts.get(row["doc_a"], ""), texts.get(row["doc_b"], "")
        spans_a, spans_b = shared_passages(a[:MAX_SHOWN_CHARS * 2], b[:MAX_SHOWN_CHARS * 2])
        for ev in json.loads(row.get("evidence") or "[]"):
            if ev.get("unit_type") != "document" and ev.get("a_start") is not None:
                spans_a.append((ev["a_start"], ev["a_end"]))
                spans_b.append((ev["b_start"], ev["b_end"]))
        coverage = "–" if row.get("coverage_a") is None else f"{row['coverage_a']:.0%} / {row['coverage_b']:.0%}"
        return {**row, "cosine_s": _fmt(row.get("cosine")), "jaccard_s": _fmt(row.get("jaccard")),
                "coverage_s": coverage, "html_a": highlight(a, _merge(spans_a)), "html_b": highlight(b, _merge(spans_b))}

    pairs = [side_by_side(r) for r in top_pairs]
    passages = [side_by_side(r) for r in top_passages]
    settings = [(k, json.dumps(summary[k], sort_keys=True) if isinstance(summary[k], (dict, list))
                 else "–" if summary[k] is None else summary[k]) for k in SETTINGS if k in summary]
    sources, sources_total = _source_rows(counts.get("by_source") or {})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        s=summary, settings=settings, stages=stages, sources=sources, sources_total=sources_total,
        charts=histogram_svgs(histograms, thresholds), groups=top_groups, pairs=pairs, passages=passages,
        templates=_one_row_per_text(templates))


def _merge(spans):
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(s) for s in merged]


class BuildRunReport(beam.PTransform):
    """PBegin -> the path of <output>/report.html, written once when the summary and tables are known."""

    def __init__(self, output: str, *, summary, pairs, groups, docs, scored, top: int = 25, top_groups: int = 15,
                 templates=None, top_templates: int = 20):
        super().__init__()
        self.templates, self.top_templates = templates, top_templates
        self.output, self.summary, self.pairs, self.groups = output, summary, pairs, groups
        self.docs, self.scored, self.top, self.top_groups = docs, scored, top, top_groups

    def expand(self, pbegin):
        path = join_path(self.output, "report.html")
        top_pairs = (self.pairs | "DuplicateRows" >> beam.Filter(lambda r: not _is_passage(r))
                     | "TopPairs" >> beam.combiners.Top.Of(self.top, key=_pair_strength))
        top_passages = (self.pairs | "PassageRows" >> beam.Filter(_is_passage)
                        | "TopPassages" >> beam.combiners.Top.Of(self.top, key=_passage_strength))
        top_groups = self.groups | "TopGroups" >> beam.combiners.Top.Of(
            self.top_groups, key=lambda g: (g["size"], g["group_id"]))
        histograms = self.scored | "Histograms" >> beam.CombineGlobally(ScoreHistograms())
        wanted = ((top_pairs, top_passages) | "BothTops" >> beam.Flatten() | "AllShown" >> beam.FlatMap(lambda rows: rows)
                  | "ShownIds" >> beam.FlatMap(lambda r: (r["doc_a"], r["doc_b"])) | "Distinct" >> beam.Distinct()
                  | "WantedIds" >> beam.combiners.ToList())
        texts = (self.docs
                 | "PairTexts" >> beam.FlatMap(
                     lambda d, ids: [(d["id"], d["text"])] if d["id"] in ids else [],
                     beam.pvalue.AsSingleton(wanted | "IdSet" >> beam.Map(frozenset)))
                 | "TextsById" >> beam.combiners.ToDict())

        if self.templates is not None:
            top_templates = self.templates | "TopTemplates" >> beam.combiners.Top.Of(
                self.top_templates, key=lambda t: (t["documents"], t["key"]))
        else:
            top_templates = pbegin | "NoTemplates" >> beam.Create([[]])

        def write(_, summary, hist, pairs, passages, groups, by_id, templates):
            page = render_report(summary, hist, pairs, groups, by_id, templates, passages)
            with FileSystems.create(path, mime_type="text/html") as handle:
                handle.write(page.encode("utf-8"))
            return path

        return (pbegin | "Once" >> beam.Create([None])
                | "WriteReportHtml" >> beam.Map(
                    write, beam.pvalue.AsSingleton(self.summary), beam.pvalue.AsSingleton(histograms),
                    beam.pvalue.AsSingleton(top_pairs), beam.pvalue.AsSingleton(top_passages),
                    beam.pvalue.AsSingleton(top_groups),
                    beam.pvalue.AsSingleton(texts), beam.pvalue.AsSingleton(top_templates)))
