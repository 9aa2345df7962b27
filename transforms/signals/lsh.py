"""MinHash LSH as Beam transforms: signatures -> band buckets -> candidate pairs -> exact Jaccard.

    pairs = units | MinHashDuplicates(MinHashParams(), threshold=0.7)

Input: {"id": str, "text": str}. Output: Pair dicts {"doc_a", "doc_b", "jaccard", "method": "minhash"}
with doc_a < doc_b and exact Jaccard (of the shingle-id sets) >= threshold.

Bands are chosen for recall at the threshold (probability of becoming a candidate at J = threshold
is 1 - (1 - t^r)^b >= target_recall) and, among those, for the fewest false candidates below it;
precision comes from exact verification of every candidate, not from the bands.

Buckets: a band bucket holding more than `max_bucket` members (shared boilerplate, templates) does
not emit all its s(s-1)/2 pairs: its members are sorted by id and each is paired with its next
`oversize_window` members (a chain with a short window), which keeps the work linear in s; such
buckets are counted (`lsh/oversized_buckets`) and reported in the output `oversized` tag.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Optional

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.signals.minhash import MinHasher, MinHashParams, estimated_jaccard, exact_jaccard
from transforms.matching.pair_join import JoinPairScores

OVERSIZED_TAG = "oversized"


def candidate_probability(j: float, bands: int, rows: int) -> float:
    """Probability that a pair with Jaccard j shares at least one band: 1 - (1 - j^r)^b."""
    return 1.0 - (1.0 - j ** rows) ** bands


def choose_bands(threshold: float, num_perm: int, target_recall: float = 0.97) -> tuple[int, int]:
    """(bands, rows) with b*r <= num_perm, P(candidate | J=threshold) >= target_recall, and the
    smallest expected false-candidate mass below the threshold (integral of P over [0, t))."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    grid = np.linspace(0.0, threshold, 200, endpoint=False)
    best = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) < target_recall:
            continue
        fp_mass = float(np.mean([candidate_probability(j, bands, rows) for j in grid]))
        if best is None or fp_mass < best[0]:
            best = (fp_mass, bands, rows)
    if best is None:  # even r=1 misses the target: take the most permissive setting
        return num_perm, 1
    return best[1], best[2]


def s_curve(bands: int, rows: int, points: Iterable[float] = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)) -> dict:
    return {f"{j:.2f}": round(candidate_probability(j, bands, rows), 4) for j in points}


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One 10-byte key per band: band index + 64-bit digest of the band's signature values."""
    sig = np.ascontiguousarray(signature)
    return [i.to_bytes(2, "big") + hashlib.blake2b(sig[i * rows:(i + 1) * rows].tobytes(), digest_size=8).digest()
            for i in range(bands)]


class _SignFn(beam.DoFn):
    """{"id", "text"} -> {"id", "sig": uint32[num_perm], "ids": uint64[] (sorted shingle ids)}."""

    def __init__(self, params: MinHashParams):
        self.params = params
        self.signed = Metrics.counter("minhash", "signatures")
        self.empty = Metrics.counter("minhash", "no_shingles")

    def setup(self):
        self.hasher = MinHasher(self.params)

    def process(self, unit: dict):
        sig, ids = self.hasher.signature(unit["text"])
        if ids.size == 0:
            self.empty.inc()
            return
        self.signed.inc()
        yield {"id": unit["id"], "sig": sig, "ids": ids}


class MinHashSignatures(beam.PTransform):
    """{"id", "text"} -> {"id", "sig", "ids"}; units without any token are counted and skipped."""

    def __init__(self, params: MinHashParams):
        super().__init__()
        self.params = params

    def expand(self, units):
        return units | "Sign" >> beam.ParDo(_SignFn(self.params))


def sign_unit(hasher: MinHasher, banding: dict, unit: dict) -> dict:
    """Unit dict -> the unit plus "sig", "ids" and "bands" (hex band keys under its type's banding;
    none when the text has no token) and, for a document, "tokens" (its word sequence,
    transforms/matching/alignment.py). Shared by the job (SignUnits) and the draft check (service/)."""
    sig, ids = hasher.signature(unit["text"])
    if unit["unit_type"] == "document":
        from transforms.matching.alignment import word_sequence

        unit = {**unit, "tokens": word_sequence(unit["text"])}
    if ids.size == 0:
        return {**unit, "sig": sig, "ids": ids, "bands": []}
    bands, rows = banding[unit["unit_type"]]
    return {**unit, "sig": sig, "ids": ids, "bands": [k.hex() for k in band_keys(sig, bands, rows)]}


class _SignUnitsFn(_SignFn):
    """Unit dict -> the unit plus "sig", "ids" and "bands" (hex band keys under its type's banding)."""

    def __init__(self, params: MinHashParams, banding: dict):
        super().__init__(params)
        self.banding = banding

    def process(self, unit: dict):
        signed = sign_unit(self.hasher, self.banding, unit)
        (self.signed if signed["bands"] else self.empty).inc()
        yield signed


class SignUnits(beam.PTransform):
    """Unit dicts -> the same units with "sig" (uint32[num_perm]), "ids" (sorted uint64 shingle ids)
    and "bands" (hex band keys; `banding` maps unit type -> (bands, rows)). A unit without any token
    keeps empty ids and bands (it is still embedded; it cannot match lexically)."""

    def __init__(self, params: MinHashParams, banding: dict):
        super().__init__()
        self.params = params
        self.banding = dict(banding)

    def expand(self, units):
        return units | "Sign" >> beam.ParDo(_SignUnitsFn(self.params, self.banding))


def shingles_to_text(ids: np.ndarray) -> str:
    """Sorted uint64 shingle ids -> base64 (little-endian), as stored in Elasticsearch."""
    import base64

    return base64.b64encode(np.ascontiguousarray(ids, dtype="<u8").tobytes()).decode("ascii")


def shingles_from_text(text: str) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(text), dtype="<u8").astype(np.uint64)


class _BucketPairsFn(beam.DoFn):
    """(band key, member ids) -> candidate pairs; oversized buckets become a chain and a report."""

    def __init__(self, max_bucket: int, window: int):
        self.max_bucket = max_bucket
        self.window = window
        self.buckets = Metrics.counter("lsh", "buckets_with_pairs")
        self.oversized = Metrics.counter("lsh", "oversized_buckets")
        self.emitted = Metrics.counter("lsh", "bucket_pairs_emitted")
        self.largest = Metrics.distribution("lsh", "bucket_size")

    def process(self, element):
        key, members = element
        ids = sorted(set(members))
        size = len(ids)
        if size < 2:
            return
        self.buckets.inc()
        self.largest.update(size)
        if size <= self.max_bucket:
            for i in range(size):
                for j in range(i + 1, size):
                    yield ids[i], ids[j]
            self.emitted.inc(size * (size - 1) // 2)
            return
        self.oversized.inc()
        yield beam.pvalue.TaggedOutput(OVERSIZED_TAG, {"band": int.from_bytes(key[:2], "big"),
                                                        "key": key.hex(), "size": size})
        for i in range(size):
            for j in range(i + 1, min(i + 1 + self.window, size)):
                yield ids[i], ids[j]
        self.emitted.inc(sum(min(self.window, size - 1 - i) for i in range(size)))


class LshCandidates(beam.PTransform):
    """{"id", "sig"} -> distinct candidate pairs (a, b) with a < b; tagged outputs `pairs`, `oversized`."""

    def __init__(self, bands: int, rows: int, *, max_bucket: int = 200, oversize_window: int = 3):
        super().__init__()
        self.bands, self.rows = bands, rows
        self.max_bucket, self.window = max_bucket, oversize_window

    def expand(self, signatures):
        bands, rows = self.bands, self.rows
        buckets = (signatures
                   | "BandKeys" >> beam.FlatMap(lambda s: ((k, s["id"]) for k in band_keys(s["sig"], bands, rows)))
                   | "GroupBands" >> beam.GroupByKey()
                   | "BucketPairs" >> beam.ParDo(_BucketPairsFn(self.max_bucket, self.window))
                   .with_outputs(OVERSIZED_TAG, main="pairs"))
        counter = Metrics.counter("lsh", "candidates")

        def count(pair):
            counter.inc()
            return pair

        pairs = buckets.pairs | "DistinctPairs" >> beam.Distinct() | "CountCandidates" >> beam.Map(count)
        return {"pairs": pairs, OVERSIZED_TAG: buckets[OVERSIZED_TAG]}


class VerifyJaccard(beam.PTransform):
    """Candidate pairs (a, b) + {"id", "sig", "ids"} -> Pair dicts with exact Jaccard >= threshold.

    A cheap first pass joins only the signatures (num_perm * 4 bytes per side) and drops candidates
    whose estimated Jaccard is below `threshold - prefilter_margin`; with 128 permutations the
    estimate's standard deviation is <= 0.045, so a 0.15 margin loses a true pair with probability
    ~1e-4 while sparing the exact pass (which ships whole shingle sets) most false candidates.
    `prefilter_margin=1` turns the prefilter off.
    """

    def __init__(self, signatures, threshold: float, prefilter_margin: float = 0.15):
        super().__init__()
        self.signatures = signatures
        self.threshold = threshold
        self.margin = prefilter_margin

    def expand(self, candidates):
        threshold, floor = self.threshold, self.threshold - self.margin
        verified = Metrics.counter("lsh", "verified_pairs")
        rejected = Metrics.counter("lsh", "rejected_candidates")
        prefiltered = Metrics.counter("lsh", "prefiltered_candidates")

        def promising(scored):
            pair, estimate = scored
            if estimate >= floor:
                yield pair
            else:
                prefiltered.inc()

        def keep(scored):
            (a, b), j = scored
            if j < threshold:
                rejected.inc()
                return
            verified.inc()
            yield {"doc_a": a, "doc_b": b, "jaccard": round(float(j), 6), "method": "minhash"}

        if self.margin < 1.0:
            sig_by_unit = self.signatures | "SigByUnit" >> beam.Map(lambda s: (s["id"], s["sig"]))
            candidates = (candidates
                          | "EstimateJaccard" >> JoinPairScores(sig_by_unit, estimated_jaccard, namespace="lsh_pre")
                          | "Prefilter" >> beam.FlatMap(promising))
        ids_by_unit = self.signatures | "IdsByUnit" >> beam.Map(lambda s: (s["id"], s["ids"]))
        return (candidates
                | "ExactJaccard" >> JoinPairScores(ids_by_unit, exact_jaccard, namespace="lsh")
                | "KeepAboveThreshold" >> beam.FlatMap(keep))


class MinHashDuplicates(beam.PTransform):
    """{"id", "text"} -> {"pairs": verified Pair dicts, "oversized": bucket reports, "signatures": ...}."""

    def __init__(self, params: MinHashParams, threshold: float, *, target_recall: float = 0.97,
                 max_bucket: int = 200, oversize_window: int = 3, prefilter_margin: float = 0.15,
                 signed: bool = False, banding: Optional[tuple[int, int]] = None):
        """banding: (bands, rows) already chosen (else chosen here from threshold and target_recall)."""
        super().__init__()
        self.params = params
        self.signed = signed
        self.margin = prefilter_margin
        self.threshold = threshold
        self.bands, self.rows = banding or choose_bands(threshold, params.num_perm, target_recall)
        self.max_bucket, self.window = max_bucket, oversize_window

    def describe(self) -> dict:
        return {"threshold": self.threshold, "bands": self.bands, "rows": self.rows,
                "s_curve": s_curve(self.bands, self.rows), "max_bucket": self.max_bucket,
                "oversize_window": self.window, "prefilter_margin": self.margin, "minhash": self.params.describe(),
                "params_key": self.params.key}

    def expand(self, units):
        """`units`: {"id", "text"}, or already signed {"id", "sig", "ids"} (then `signed=True`)."""
        signatures = units if self.signed else units | "Signatures" >> MinHashSignatures(self.params)
        candidates = signatures | "Candidates" >> LshCandidates(
            self.bands, self.rows, max_bucket=self.max_bucket, oversize_window=self.window)
        pairs = candidates["pairs"] | "VerifyJaccard" >> VerifyJaccard(signatures, self.threshold, self.margin)
        return {"pairs": pairs, OVERSIZED_TAG: candidates[OVERSIZED_TAG], "signatures": signatures}
