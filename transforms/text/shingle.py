"""Shingling: the strict normalisation used only for lexical matching, and word/char n-grams.

The text given to the embedding model is never changed here: tokenisation works on a copy that is
case-folded, with punctuation and symbols dropped and, optionally, accents removed.
"""
from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def shingle_tokens(text: str, *, kind: str = "word", remove_accents: bool = False) -> list[str]:
    """Text -> tokens for shingling: lower-cased words (letters and digits), or the characters of
    the space-joined words for character shingles."""
    text = unicodedata.normalize("NFC", text).lower()
    if remove_accents:
        text = strip_accents(text)
    words = _WORD.findall(text)
    if kind == "word":
        return words
    if kind == "char":
        return list(" ".join(words))
    raise ValueError(f"shingle kind must be 'word' or 'char', got {kind!r}")


def shingles(tokens: list[str], n: int, sep: str = " ") -> set[str]:
    """n-grams of tokens joined by `sep`; fewer than n tokens give one shingle of all of them."""
    if not tokens:
        return set()
    if len(tokens) < n:
        return {sep.join(tokens)}
    return {sep.join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (0.0 when both are empty)."""
    if not a and not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
