"""Exact word-sequence alignment of two documents: the evidence for heavily edited copies.

    seq = word_sequence(text)                 # uint32 word hashes, in text order
    aligned, small_edits = align(seq_a, seq_b)

A copy with a third of its words replaced keeps no long shingle in common with its source (Jaccard
~0.2) and, on a documentation site, sits at a cosine that parallel pages of the site reach too. What
it keeps is the order of the other words. `aligned` = 2·LCS / (|a| + |b|) of the two word sequences
(rapidfuzz's Indel: the longest common subsequence), and `small_edits` = the smaller share of either
side's words that are aligned or inside an unaligned run of at most `max_gap` words: scattered word
edits keep it high, a different passage between shared ones (two pages quoting one long code
example) does not. Measured on a whole site (bench/site_alignment.py, README "Defaults from
evidence").

Words are the shingling tokens (transforms.text.shingle.shingle_tokens: case-folded letters and
digits) hashed to 32 bits: 4 bytes a word in flight and in the index; a hash collision merely
aligns two different words.
"""
from __future__ import annotations

import base64
import zlib

import numpy as np

from transforms.text.shingle import shingle_tokens

MAX_GAP = 3
# Longer documents are not aligned (their pairs keep the other clauses): the exact alignment's
# bit-parallel matrix is |a|·|b|/8 bytes, 50 MB at 20,000 words a side.
MAX_WORDS = 20_000


def word_sequence(text: str) -> np.ndarray:
    """Text -> uint32 hashes of its words (shingle_tokens), in order."""
    return np.fromiter((zlib.crc32(w.encode("utf-8")) for w in shingle_tokens(text)), dtype=np.uint32)


def sequence_to_text(seq: np.ndarray) -> str:
    """uint32 word hashes -> base64 (little-endian), as stored in Elasticsearch (`tokens`)."""
    return base64.b64encode(np.ascontiguousarray(seq, dtype="<u4").tobytes()).decode("ascii")


def sequence_from_text(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u4").astype(np.uint32)


def align_sides(a, b, max_gap: int = MAX_GAP, max_words: int = MAX_WORDS):
    """Two word sequences (arrays or lists of hashes) -> (aligned, share of a, share of b): each
    side's share of words aligned or inside an unaligned run of at most `max_gap` words; (0, 0, 0)
    when either is empty; None when either is longer than `max_words`."""
    from rapidfuzz.distance import Indel

    if max(len(a), len(b)) > max_words:
        return None
    a = a.tolist() if isinstance(a, np.ndarray) else list(a)
    b = b.tolist() if isinstance(b, np.ndarray) else list(b)
    if not a or not b:
        return 0.0, 0.0, 0.0
    ca = cb = 0
    for op in Indel.opcodes(a, b):
        la, lb = op.src_end - op.src_start, op.dest_end - op.dest_start
        if op.tag == "equal" or max(la, lb) <= max_gap:
            ca, cb = ca + la, cb + lb
    return Indel.normalized_similarity(a, b), ca / len(a), cb / len(b)


def align(a, b, max_gap: int = MAX_GAP, max_words: int = MAX_WORDS):
    """Two word sequences (arrays or lists of hashes) -> (aligned, small_edits), rounded to 6
    places; (0.0, 0.0) when either is empty; None when either is longer than `max_words`."""
    sides = align_sides(a, b, max_gap, max_words)
    if sides is None:
        return None
    aligned, share_a, share_b = sides
    return round(aligned, 6), round(min(share_a, share_b), 6)
