"""Labelled site corpora from real documentation websites that Debian packages (offline, no install).

    pages = site_pages("libreoffice-help-es", workdir)          # [{"id", "url", "title", "html", "text"}]
    docs, gold = plant_copies(pages, seed=1, per_kind=10)        # originals + planted copies, gold pairs

A package is fetched with `apt-get download` and unpacked with `dpkg -x` into `workdir` (nothing is
installed system-wide). Each HTML page becomes a document twice over: `html` as shipped, and `text`
as a crawler's plain extraction would give it, *navigation and footers included* (every block element
its own paragraph), which is what makes site corpora hard: their template text repeats on most pages.

Planted copies use `transforms.evaluation.perturb` edit types, so the gold rows name the edit; copies keep the
page's template (a copy on the same site has the same navigation).
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import subprocess
from typing import Optional

SITES = {  # package -> folder of its HTML pages inside the package
    "libreoffice-help-es": "usr/share/libreoffice/help/es",
    "gimp-help-es": "usr/share/gimp/2.0/help/es",
    "debian-reference-es": "usr/share/debian-reference",
    # LilyPond's manuals split one section a page, each with its navigation bars, "Otros idiomas" bar and
    # bug-report footer (the site issue 19 was found on); never used to choose a default.
    "lilypond-doc-html-es": "usr/share/doc/lilypond/html/Documentation",
    "libreoffice-help-pt": "usr/share/libreoffice/help/pt",  # other languages of one site: load, not quality
    "libreoffice-help-fr": "usr/share/libreoffice/help/fr",
}
# Pages left out of a site: LilyPond's `*-big-page` files are each manual again as one page of up to 7 MB
# (its printable copy, not a page a team publishes twice).
SITE_SKIP = {"lilypond-doc-html-es": re.compile(r"-big-page\.")}
_SPACE = re.compile(r"\s+")


def fetch_package(package: str, workdir: str) -> str:
    """Downloads and unpacks `package` under workdir/<package>/ (once); returns that folder."""
    target = os.path.join(workdir, package)
    if os.path.isdir(target):
        return target
    os.makedirs(workdir, exist_ok=True)

    def download():
        return subprocess.run(["apt-get", "download", package], cwd=workdir, capture_output=True, text=True)

    debs = glob.glob(os.path.join(workdir, f"{package}_*.deb"))
    if not debs:
        result = download()
        debs = glob.glob(os.path.join(workdir, f"{package}_*.deb"))
        if not debs and os.geteuid() == 0:  # package lists not fetched yet on a fresh machine
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
            result = download()
            debs = glob.glob(os.path.join(workdir, f"{package}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {package} failed: {result.stderr.strip()[-500:]}")
    subprocess.run(["dpkg", "-x", debs[0], target + ".tmp"], check=True)
    os.replace(target + ".tmp", target)
    return target


def page_text(html: str) -> str:
    """A page's visible text as a plain crawler extracts it: one paragraph per block element
    (blank-line separated), whitespace collapsed, scripts and styles dropped, navigation kept."""
    import lxml.html

    from transforms.text.normalize import block_text

    return block_text(lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")))


def site_pages(package: str, workdir: str, limit: Optional[int] = None, min_words: int = 30) -> list[dict]:
    """The HTML pages of a packaged site (sorted by path; `limit` spread evenly over the site) as
    {"id", "url", "title", "html", "text"}; pages with fewer than `min_words` words are left out."""
    import lxml.html

    root = os.path.join(fetch_package(package, workdir), SITES[package])
    skip = SITE_SKIP.get(package)
    paths = [p for p in sorted(glob.glob(os.path.join(root, "**", "*.htm*"), recursive=True))
             if not (skip and skip.search(os.path.basename(p)))]
    pages = []
    for path in paths:
        with open(path, "rb") as handle:
            raw = handle.read()
        html = raw.decode("utf-8", errors="replace")
        text = page_text(html)
        if len(text.split()) < min_words:
            continue
        rel = os.path.relpath(path, root)
        title = lxml.html.document_fromstring(
            html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")).findtext(".//title") or ""
        pages.append({"id": f"{package.split('-')[0]}-{hashlib.sha1(rel.encode()).hexdigest()[:10]}",
                      "url": f"https://{package}.invalid/{rel}", "title": title.strip(), "html": html, "text": text})
    if limit and len(pages) > limit:
        step = len(pages) / limit
        pages = [pages[int(i * step)] for i in range(limit)]
    return pages


# --- planted copies and gold ---------------------------------------------------------------------

# What each planted edit is, in the terms of the site-precision targets.
CATEGORY = {"exact": "exact", "html": "rewrapped", "sentence_drop": "light", "synonym": "light",
            "substitute_10": "light", "transplant_host": "light", "substitute_30": "heavy",
            "sentence_reorder": "heavy", "sibling_copies": "common_source", "multi_copy": "common_source",
            "transplant": "passage"}
MULTI_KINDS = ("exact", "substitute_10", "sentence_drop")
TEMPLATE_PAGES = 9  # a paragraph on more pages than this is the site's template (planting and judging)


def plant_copies(pages: list[dict], *, seed: int = 1, per_kind: int = 6, multi: int = 3, html: bool = False,
                 passage_chars: int = 150) -> tuple[list[dict], list[tuple[str, str, str, int]]]:
    """Site pages -> (documents: originals + planted copies, gold rows (id_a, id_b, kind, 1)).

    One copy per edit type of transforms.evaluation.perturb for `per_kind` originals, plus `multi` originals
    copied three times each (MULTI_KINDS; every two of the four are gold pairs, kind multi_copy).
    Transplants copy a *content* paragraph (>= `passage_chars` characters, found on no other page)
    into another page: on a help site most paragraphs are headings and menu lines, and a reused
    heading is not the passage reuse a content team looks for.
    html: the originals are the pages as shipped (copies are edited as the job's extracted text, exact
    copies stay byte-identical); else the crawler's text with navigation.
    Edits change the page's own text only: a paragraph found on more than TEMPLATE_PAGES pages (the
    site's navigation, sidebars, footers; the judge's bound below) stays as it is in the copy, as it
    does when a team copies a page on its own site. (Until 2026-12-06 the edits also changed words of
    the navigation, so a copy's sidebar was no longer the site's template.)
    """
    import random

    from transforms.evaluation.perturb import KINDS, _plain, generate, perturb

    originals = [{"id": p["id"], "url": p["url"], "title": p["title"], "text": p["html"] if html else p["text"]}
                 for p in pages]
    plain = {d["id"]: _plain(d["text"]) for d in originals}
    counts: dict = {}
    for d in originals:
        for para in {_norm(x) for x in re.split(r"\n\s*\n", plain[d["id"]])}:
            counts[para] = counts.get(para, 0) + 1

    def site_template(paragraph: str) -> bool:  # on more pages than the judge's own passages may be
        return counts.get(_norm(paragraph), 0) > TEMPLATE_PAGES

    docs, gold = generate(originals, seed=seed, per_kind=per_kind, negatives=0,
                          kinds=[k for k in KINDS if k != "transplant"], keep=site_template)
    rng = random.Random(seed + 1)
    used = {row[0] for row in gold}
    # Transplants: a content paragraph of one page inserted into another page.
    donors = [d for d in originals if d["id"] not in used and any(
        len(x) >= passage_chars and counts[_norm(x)] == 1 for x in re.split(r"\n\s*\n", plain[d["id"]]))]
    for i, donor in enumerate(rng.sample(donors, min(per_kind, len(donors)))):
        passage = rng.choice([x for x in re.split(r"\n\s*\n", plain[donor["id"]])
                              if len(x) >= passage_chars and counts[_norm(x)] == 1])
        host = rng.choice([d for d in originals if d["id"] not in used and d["id"] != donor["id"]])
        host_paragraphs = re.split(r"\n\s*\n", plain[host["id"]])
        at = rng.randrange(1, len(host_paragraphs) + 1)
        new_id = f"{donor['id']}--transplant-{i}"
        docs.append({"id": new_id, "title": host["title"], "perturbation": "transplant", "source_id": host["id"],
                     "text": "\n\n".join(host_paragraphs[:at] + [passage] + host_paragraphs[at:])})
        gold.extend([(donor["id"], new_id, "transplant", 1), (host["id"], new_id, "transplant_host", 1)])
        used.update((donor["id"], host["id"]))
    fresh = [d for d in originals if d["id"] not in used]
    vocabulary = sorted({w for d in originals[:200] for w in re.findall(r"[^\W\d_]{3,}", _plain(d["text"]).lower())})
    for original in rng.sample(fresh, min(multi, len(fresh))):
        ids = [original["id"]]
        for i, kind in enumerate(MULTI_KINDS):
            text = original["text"] if kind == "exact" else perturb(_plain(original["text"]), kind, rng, vocabulary,
                                                                    keep=site_template)
            new_id = f"{original['id']}--multi-{kind}-{i}"
            docs.append({"id": new_id, "title": original["title"], "text": text, "perturbation": f"multi_{kind}",
                         "source_id": original["id"]})
            ids.append(new_id)
        gold.extend((a, b, "multi_copy", 1) for j, a in enumerate(ids) for b in ids[j + 1:])
    return docs, gold


def _norm(text: str) -> str:
    return _SPACE.sub(" ", re.sub(r"\d+", "0", text.lower())).strip()


def _paragraph_sets(texts: dict[str, str], min_chars: int, max_docs: int) -> dict[str, list[str]]:
    """{doc id: its normalised paragraphs of >= min_chars that occur (exactly) on at most max_docs pages}."""
    import collections

    paragraphs = {d: sorted({_norm(p) for p in re.split(r"\n\s*\n", t) if len(p.strip()) >= min_chars})
                  for d, t in texts.items()}
    df = collections.Counter(p for ps in paragraphs.values() for p in ps)
    return {d: [p for p in ps if df[p] <= max_docs] for d, ps in paragraphs.items()}


def _near_equal(x: str, candidates: list[str], min_ratio: float) -> bool:
    """True when `x` is in `candidates` or difflib's character ratio to one of them is >= min_ratio."""
    import difflib

    if x in candidates:
        return True
    matcher = difflib.SequenceMatcher(None, b=x, autojunk=False)  # b is the cached side
    for y in candidates:
        matcher.set_seq1(y)
        if matcher.real_quick_ratio() >= min_ratio and matcher.quick_ratio() >= min_ratio and matcher.ratio() >= min_ratio:
            return True
    return False


def share_a_passage(a: list[str], b: list[str], min_ratio: float = 0.8) -> bool:
    """True when a paragraph of `a` and one of `b` are the same text or nearly (difflib's character
    ratio >= min_ratio: a copied paragraph with a few words changed), judged without the job's
    shingles or embeddings."""
    return bool(set(a) & set(b)) or any(_near_equal(x, b, min_ratio) for x in a)


def near_duplicate_pages(a: list[str], b: list[str], min_ratio: float = 0.8) -> bool:
    """True when at least half of the smaller page's paragraphs have a counterpart in the other page
    that is the same or nearly (as share_a_passage): a page and its variant with a few words changed
    in each paragraph ("Función Blue" / "Función Red")."""
    if not a or not b:
        return False
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return sum(_near_equal(x, big, min_ratio) for x in small) >= 0.5 * len(small)


def score_site_run(pairs: list[dict], docs: list[dict], gold: list[tuple], groups: list[dict]) -> dict:
    """Scores a run's duplicates rows against planted gold on a site corpus.

    - document pairs (relation "duplicate"): true when both documents are copies of one original
      (gold pairs joined transitively, siblings included), or the two original pages are themselves
      near-duplicates (near_duplicate_pages over their own paragraphs: >= 40 characters, on at most TEMPLATE_PAGES
      pages);
    - passage pairs (relation "passage"): true when gold names them (transplant), they are copies of
      one original, or the two original pages share a passage: a paragraph of >= 40 characters that
      is on at most TEMPLATE_PAGES pages of the site (more is its template) and is the same, or nearly
      (share_a_passage), in both;
    - recall per category: a gold pair reported with the relation its category expects.
    """
    import collections

    from transforms.evaluation.perturb import _plain

    source = {d["id"]: d.get("source_id") or d["id"] for d in docs}
    texts = {d["id"]: _plain(d["text"]) for d in docs}
    # Components of document-level gold: every two members are copies of one page.
    parent = {d: d for d in texts}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    expected = {}
    for a, b, kind, _ in gold:
        expected[tuple(sorted((a, b)))] = kind
        if CATEGORY[kind] != "passage":
            parent[find(a)] = find(b)
    originals = {d["id"]: texts[d["id"]] for d in docs if not d.get("source_id")}
    own = _paragraph_sets(originals, min_chars=40, max_docs=TEMPLATE_PAGES)

    def shares_passage(a, b):
        return share_a_passage(own.get(source[a], []), own.get(source[b], []))

    def near_duplicate_originals(a, b):
        return near_duplicate_pages(own.get(source[a], []), own.get(source[b], []))

    rows = {tuple(sorted((r["doc_a"], r["doc_b"]))): r for r in pairs}
    verdict = collections.Counter()
    false_examples = []
    for key, r in sorted(rows.items()):
        a, b = key
        same = find(a) == find(b)
        if r.get("relation", "duplicate") == "duplicate":
            ok = same or near_duplicate_originals(a, b)
            verdict["duplicate_true" if ok else "duplicate_false"] += 1
        else:
            ok = expected.get(key) == "transplant" or same or shares_passage(a, b)
            verdict["passage_true" if ok else "passage_false"] += 1
        if not ok and len(false_examples) < 20:
            false_examples.append({k: r.get(k) for k in ("doc_a", "doc_b", "relation", "cosine", "jaccard",
                                                          "coverage_a", "coverage_b", "granularity", "rule")})
    recall = collections.defaultdict(lambda: [0, 0])
    for a, b, kind, _ in gold:
        category = CATEGORY[kind]
        row = rows.get(tuple(sorted((a, b))))
        wanted = "passage" if category == "passage" else "duplicate"
        recall[category][1] += 1
        if row is not None and (row.get("relation", "duplicate") == wanted or category == "passage"):
            recall[category][0] += 1
    sizes = collections.Counter(find(d) for d in texts)

    def ratio(t, f):
        return round(t / (t + f), 4) if t + f else None

    return {
        "documents": len(docs), "originals": len(originals), "reported_pairs": len(rows),
        "document_pairs": verdict["duplicate_true"] + verdict["duplicate_false"],
        "passage_pairs": verdict["passage_true"] + verdict["passage_false"],
        "document_precision": ratio(verdict["duplicate_true"], verdict["duplicate_false"]),
        "passage_precision": ratio(verdict["passage_true"], verdict["passage_false"]),
        "precision_all": ratio(verdict["duplicate_true"] + verdict["passage_true"],
                               verdict["duplicate_false"] + verdict["passage_false"]),
        "recall": {k: {"found": v[0], "gold": v[1], "recall": round(v[0] / v[1], 4)} for k, v in sorted(recall.items())},
        "largest_group": max((g["size"] for g in groups), default=0),
        "largest_planted_group": max(sizes.values(), default=0),
        "false_examples": false_examples,
    }
