"""Synthetic near-duplicates of any corpus, one per edit type, with gold pairs, from a seed.

    python -m pipelines.evaluate perturb --docs corpus.jsonl --out perturbed/ --seed 7 [--per_kind 20]

Writes `perturbed/docs.jsonl` (the originals plus one perturbed copy per chosen original and edit)
and `perturbed/gold.tsv` (`id_a  id_b  kind  is_duplicate`), ready for the job and for
`pipelines.evaluate` (recall per kind = per edit type). Edit types (KINDS):

- exact: a verbatim copy;            - html: the text re-wrapped in a page with navigation and footer;
- sentence_drop: 20% of sentences removed;   - sentence_reorder: sentences shuffled in each paragraph;
- substitute_10 / substitute_30: that share of words replaced by other words of the corpus;
- synonym: words swapped for synonyms from a small ES/EN table (a translation-free paraphrase);
- transplant: one paragraph copied into another article (a shared passage, `is_duplicate` 1);
- unrelated_pair: two different originals (`is_duplicate` 0), a labelled negative per draw.

Also labelled: `transplant_host` (the article that received the paragraph, also a near-duplicate of
the copy) and `sibling_copies` (two copies of one original). Originals are drawn without
replacement until all are used, so most copies have distinct sources.

HTML originals are edited as the text the job extracts from them (exact copies stay byte-identical).
Everything is drawn from `random.Random(seed)`: the same corpus and seed give the same files.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import random
import re

KINDS = ("exact", "html", "sentence_drop", "sentence_reorder", "substitute_10", "substitute_30", "synonym",
         "transplant")

SYNONYMS = {  # small, hand-checked ES/EN table; both directions are used
    "importante": "relevante", "grande": "amplio", "pequeño": "reducido", "rápido": "veloz", "usar": "utilizar",
    "usa": "utiliza", "permite": "posibilita", "ejemplo": "caso", "forma": "manera", "parte": "porción",
    "muy": "sumamente", "también": "asimismo", "pero": "aunque", "cambio": "variación", "proceso": "procedimiento",
    "método": "procedimiento", "tiene": "posee", "hace": "realiza", "puede": "logra", "mostrar": "enseñar",
    "important": "significant", "large": "big", "small": "little", "fast": "quick", "use": "employ",
    "uses": "employs", "allows": "enables", "example": "instance", "way": "manner", "part": "portion",
    "very": "highly", "also": "additionally", "but": "however", "change": "alteration", "shows": "demonstrates",
    "method": "technique", "has": "possesses", "makes": "creates", "can": "is able to", "often": "frequently",
}
SYNONYMS.update({v: k for k, v in list(SYNONYMS.items()) if " " not in v})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_IN_PARAGRAPH = ("sentence_drop", "sentence_reorder", "substitute_10", "substitute_30", "synonym")


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph.strip()) if s]


def _match_case(word: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if word[:1].isupper() else replacement


def perturb(text: str, kind: str, rng: random.Random, vocabulary: list[str], other_text: str = "",
            keep=None) -> str:
    """One edited copy of `text` (for `transplant`, `other_text` receives one of text's paragraphs).
    keep: None, or a predicate on a paragraph; the edits that work inside paragraphs (drops, reorders,
    substitutions, synonyms) leave the paragraphs it accepts as they are: a page copied on the same
    site keeps the site's navigation and footers, only the page's own text is edited."""
    paragraphs = _paragraphs(text)
    if keep is not None and kind in _IN_PARAGRAPH:
        own = [p for p in paragraphs if not keep(p)]
        if own and len(own) < len(paragraphs):
            edited = iter(_paragraphs(perturb("\n\n".join(own), kind, rng, vocabulary)))
            return "\n\n".join(p if keep(p) else next(edited) for p in paragraphs)
    if kind == "exact":
        return text
    if kind == "html":
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        return (f"<html><head><title>Blog</title></head><body><nav><a href='/'>Inicio</a> <a href='/cursos'>Cursos"
                f"</a></nav><article>{body}</article><footer>© Aviso legal · Política de privacidad</footer></body></html>")
    if kind == "sentence_drop":
        out = []
        for p in paragraphs:
            sentences = _sentences(p)
            keep = [s for s in sentences if rng.random() >= 0.2] or sentences[:1]
            out.append(" ".join(keep))
        return "\n\n".join(out)
    if kind == "sentence_reorder":
        out = []
        for p in paragraphs:
            sentences = _sentences(p)
            rng.shuffle(sentences)
            out.append(" ".join(sentences))
        return "\n\n".join(out)
    if kind.startswith("substitute_"):
        rate = int(kind.rsplit("_", 1)[1]) / 100

        def sub(m):
            return _match_case(m.group(0), rng.choice(vocabulary)) if rng.random() < rate else m.group(0)
        return re.sub(r"\w+", sub, text)
    if kind == "synonym":
        def swap(m):
            word = m.group(0)
            repl = SYNONYMS.get(word.lower())
            return _match_case(word, repl) if repl else word
        return re.sub(r"\w+", swap, text)
    if kind == "transplant":
        others = _paragraphs(other_text)
        at = rng.randrange(len(others) + 1)
        return "\n\n".join(others[:at] + [rng.choice(paragraphs)] + others[at:])
    raise ValueError(f"unknown edit type {kind!r}; choose from {KINDS}")


def _plain(text: str) -> str:
    """HTML originals are edited as their extracted text (as the job sees them), plain text as is."""
    from transforms.text.normalize import clean_text, looks_like_html

    return clean_text(text) if looks_like_html(text) else text


def generate(docs: list[dict], *, seed: int = 0, per_kind: int = 20, kinds=KINDS, negatives: int = 20, keep=None):
    """Originals -> (documents: originals + perturbed copies, gold rows (id_a, id_b, kind, is_duplicate)).
    keep: paragraphs the edits leave as they are (see perturb)."""
    rng = random.Random(seed)
    docs = sorted(docs, key=lambda d: d["id"])
    usable = [d for d in docs if len(re.findall(r"\w+", d.get("text") or "")) >= 20]
    if len(usable) < 2:
        raise ValueError("need at least two documents of 20+ words to perturb")
    vocabulary = sorted({w for d in usable for w in re.findall(r"[^\W\d_]{3,}", d["text"].lower())})
    out, gold = list(docs), []
    pool: list[dict] = []
    copies: dict[str, list[str]] = {}
    for kind in kinds:
        for i in range(min(per_kind, len(usable))):
            if not pool:  # originals are used once each until all are, so copies rarely share a source
                pool = rng.sample(usable, len(usable))
            original = pool.pop()
            new_id = f"{original['id']}--{kind}-{i}"
            other = rng.choice([d for d in usable if d["id"] != original["id"]]) if kind == "transplant" else None
            text = perturb(original["text"] if kind == "exact" else _plain(original["text"]), kind, rng, vocabulary,
                           _plain(other["text"]) if other else "", keep=keep)
            out.append({**{k: v for k, v in original.items() if k not in ("id", "text", "url")}, "id": new_id,
                        "text": text, "perturbation": kind, "source_id": original["id"]})
            gold.append((original["id"], new_id, kind, 1))
            if other is not None:
                gold.append((other["id"], new_id, "transplant_host", 1))
            else:
                copies.setdefault(original["id"], []).append(new_id)
    for ids in copies.values():  # two edited copies of one original are near-duplicates of each other
        gold.extend((a, b, "sibling_copies", 1) for i, a in enumerate(ids) for b in ids[i + 1:])
    for _ in range(negatives):
        a, b = rng.sample(usable, 2)
        gold.append((a["id"], b["id"], "unrelated_pair", 0))
    return out, gold


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate perturb", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", required=True, help="JSONL corpus ({id, text, ...})")
    parser.add_argument("--out", required=True, help="directory for docs.jsonl and gold.tsv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per_kind", type=int, default=20, help="originals perturbed per edit type")
    parser.add_argument("--kinds", default=",".join(KINDS), help="edit types to apply")
    args = parser.parse_args(argv)
    with open(args.docs, encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle if line.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown edit types {sorted(unknown)}; choose from {', '.join(KINDS)}")
    out, gold = generate(docs, seed=args.seed, per_kind=args.per_kind, kinds=kinds)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "docs.jsonl"), "w", encoding="utf-8") as handle:
        for d in out:
            handle.write(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n")
    with open(os.path.join(args.out, "gold.tsv"), "w", encoding="utf-8") as handle:
        handle.write("id_a\tid_b\tkind\tis_duplicate\n")
        for row in gold:
            handle.write("\t".join(map(str, row)) + "\n")
    print(f"{len(out)} documents ({len(out) - len(docs)} perturbed), {len(gold)} gold rows -> {args.out}")
    return 0
