"""Vectorised MinHash signatures, compatible with datasketch 2.x (scheme "affine32").

Scheme (recorded with every run by `MinHashParams.describe()`):
1. Tokens: `shingle.shingle_tokens` (lower-cased words, or characters). Each distinct token is
   hashed once: the first 8 bytes, little-endian, of BLAKE2b-64 of its UTF-8 bytes.
2. A shingle of n consecutive tokens t1..tn gets the 64-bit id
   h = FMIX64(...FMIX64(FMIX64(S ^ H(t1)) * K ^ H(t2)) ... * K ^ H(tn)), computed for all positions
   at once with numpy; `shingle_hash64(shingle_string)` is the same function on one shingle.
3. Its low 32 bits are the datasketch input value; datasketch's affine32 scheme then applies the
   MurmurHash3 32-bit finaliser and `num_perm` maps `a*x + b mod 2**32`, (a, b) drawn by datasketch
   itself for `seed`; the signature is the per-map minimum (uint32[num_perm]).
So `datasketch.MinHash(num_perm, seed, scheme="affine32", hashfunc=shingle_hash32)` fed the shingle
strings gives the same signature (tested), and LSH/LeanMinHash tools interoperate. The 64-bit ids
double as the shingle set for exact Jaccard verification. Signatures made with different params
(see `MinHashParams.key`) must never be compared.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from transforms.text.shingle import shingle_tokens

_M32 = np.uint32(0xFFFFFFFF)
_SEED64 = np.uint64(0x9E3779B97F4A7C15)
_K64 = np.uint64(0xBF58476D1CE4E5B9)


@dataclasses.dataclass(frozen=True)
class MinHashParams:
    """Everything that must match for two signatures to be comparable."""

    num_perm: int = 128
    seed: int = 1
    shingle_kind: str = "word"
    shingle_n: int = 3
    remove_accents: bool = False

    def __post_init__(self):
        if not 16 <= self.num_perm <= 1024:
            raise ValueError("num_perm must be in [16, 1024]")
        if self.shingle_kind not in ("word", "char") or not 1 <= self.shingle_n <= 32:
            raise ValueError("shingle kind must be word|char and 1 <= n <= 32")

    def describe(self) -> dict:
        return {"scheme": "datasketch-affine32/blake2b-token-fmix64", **dataclasses.asdict(self)}

    @property
    def key(self) -> str:
        """Short id of the settings, stored with signatures so mismatched ones are never compared."""
        return hashlib.sha1(repr(sorted(self.describe().items())).encode()).hexdigest()[:10]


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for small uint64 arrays, several times faster (no inverse/counts machinery)."""
    values = np.sort(values)
    keep = np.empty(values.size, dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _combine(token_hashes: np.ndarray, n: int) -> np.ndarray:
    """uint64 token hashes -> uint64 ids of every n-gram (one id of all tokens if fewer than n)."""
    n = min(n, token_hashes.size)
    count = token_hashes.size - n + 1
    with np.errstate(over="ignore"):
        h = _fmix64(np.full(count, _SEED64, dtype=np.uint64) ^ token_hashes[:count])
        for j in range(1, n):
            h = _fmix64((h * _K64) ^ token_hashes[j:j + count])
    return h


def shingle_hash64(shingle: str, kind: str = "word") -> int:
    """The 64-bit id of one shingle string (word shingles are space-joined tokens)."""
    tokens = shingle.split(" ") if kind == "word" else list(shingle)
    hashes = np.array([token_hash(t) for t in tokens], dtype=np.uint64)
    return int(_combine(hashes, len(tokens))[0])


def shingle_hash32(shingle) -> int:
    """datasketch `hashfunc` for word shingles (str or UTF-8 bytes): the low 32 bits of the id."""
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    return shingle_hash64(shingle) & 0xFFFFFFFF


class MinHasher:
    """Text -> (signature, shingle ids). Create once per worker; token hashes are cached."""

    def __init__(self, params: MinHashParams = MinHashParams(), cache_size: int = 500_000):
        from datasketch import MinHash

        self.params = params
        a, b = MinHash(num_perm=params.num_perm, seed=params.seed, scheme="affine32").permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    def _token_hashes(self, tokens: list[str]) -> np.ndarray:
        cache = self._cache
        try:
            return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
        except KeyError:
            if len(cache) > self._cache_size:
                cache.clear()
            for tok in tokens:
                if tok not in cache:
                    cache[tok] = token_hash(tok)
            return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))

    def shingle_ids(self, text: str) -> np.ndarray:
        """Text -> sorted unique uint64 shingle ids (empty when the text has no tokens)."""
        p = self.params
        tokens = shingle_tokens(text, kind=p.shingle_kind, remove_accents=p.remove_accents)
        if not tokens:
            return np.empty(0, dtype=np.uint64)
        return _sorted_unique(_combine(self._token_hashes(tokens), p.shingle_n))

    def signature_from_ids(self, ids: np.ndarray) -> np.ndarray:
        """uint64 shingle ids -> uint32[num_perm] signature (all 0xFFFFFFFF for an empty set)."""
        if ids.size == 0:
            return np.full(self.params.num_perm, _M32, dtype=np.uint32)
        hv = _fmix32((ids & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        with np.errstate(over="ignore"):
            return (hv[:, None] * self._a + self._b).min(axis=0)

    def signature(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Text -> (signature uint32[num_perm], sorted unique uint64 shingle ids)."""
        ids = self.shingle_ids(text)
        return self.signature_from_ids(ids), ids


def shared_shingles(a: np.ndarray, b: np.ndarray) -> int:
    """Shingles two sorted unique uint64 shingle-id arrays have in common."""
    return np.intersect1d(a, b, assume_unique=True).size


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two sorted unique uint64 shingle-id arrays."""
    if a.size == 0 and b.size == 0:
        return 0.0
    inter = shared_shingles(a, b)
    return inter / (a.size + b.size - inter)


def shingle_overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Two sorted unique uint64 shingle-id arrays -> (Jaccard, share of a's shingles in b, share of
    b's in a). The larger share is the containment of the smaller set in the other (Broder 1997): a
    passage copied into a longer document keeps it high while the Jaccard falls with the length."""
    if a.size == 0 or b.size == 0:
        return (0.0, 0.0, 0.0)
    inter = shared_shingles(a, b)
    return inter / (a.size + b.size - inter), inter / a.size, inter / b.size


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """MinHash estimate of Jaccard: the share of equal signature positions."""
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.size
