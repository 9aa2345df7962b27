"""MinHash LSH: band choice, planted near-duplicates at known exact Jaccard, oversized buckets."""
import json
import random
from itertools import combinations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.signals.lsh import LshCandidates, MinHashDuplicates, MinHashSignatures, candidate_probability, choose_bands
from transforms.signals.minhash import MinHashParams
from transforms.text.shingle import jaccard, shingle_tokens, shingles


def read_units(p, tmp_path, units, name="units.jsonl"):
    """Units through a JSONL file: beam.Create would bz2-compress thousands of texts into the graph."""
    path = tmp_path / name
    path.write_text("".join(json.dumps(u) + "\n" for u in units), encoding="utf-8")
    return p | f"Read{name}" >> beam.io.ReadFromText(str(path)) | f"Parse{name}" >> beam.Map(json.loads)


def test_bands_favour_recall_at_the_threshold():
    for t in (0.5, 0.7, 0.8):
        b, r = choose_bands(t, 128)
        assert b * r <= 128
        assert candidate_probability(t, b, r) >= 0.97
        assert candidate_probability(t - 0.3, b, r) < 0.7  # still selective well below the threshold


def planted_corpus(seed=0, families=60, words=150, vocab=40_000):
    """Base documents of random words plus edited copies whose word overlap spans J ~ 0.2..1."""
    rng = random.Random(seed)
    lexicon = [f"w{i}" for i in range(vocab)]
    docs = {}
    for f in range(families):
        base = [rng.choice(lexicon) for _ in range(words)]
        docs[f"f{f:03d}-base"] = base
        for v, edits in enumerate((0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 22, 30)):
            copy = list(base)
            for pos in rng.sample(range(words), edits):
                copy[pos] = rng.choice(lexicon)
            docs[f"f{f:03d}-v{v}"] = copy
    return {k: " ".join(v) for k, v in docs.items()}


def true_pairs(docs, threshold):
    sets = {k: shingles(shingle_tokens(t), 3) for k, t in docs.items()}
    by_family = {}
    for k in docs:
        by_family.setdefault(k[:4], []).append(k)
    truth = {}
    for members in by_family.values():
        for a, b in combinations(sorted(members), 2):
            j = jaccard(sets[a], sets[b])
            if j >= threshold:
                truth[(a, b)] = j
    return truth, sets


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8])
def test_recall_and_precision_on_planted_near_duplicates(threshold, tmp_path):
    docs = planted_corpus()
    truth, sets = true_pairs(docs, threshold)
    assert len(truth) > 500  # enough positive pairs for the rate to mean something
    with TestPipeline() as p:
        units = read_units(p, tmp_path, [{"id": k, "text": t} for k, t in docs.items()])
        found = units | MinHashDuplicates(MinHashParams(), threshold)
        results = found["pairs"] | beam.combiners.ToList()

        def check(rows):
            rows = rows[0]
            got = {(r["doc_a"], r["doc_b"]): r["jaccard"] for r in rows}
            assert len(got) == len(rows), "a pair was emitted twice"
            recall = len(set(got) & set(truth)) / len(truth)
            # precision against Jaccard recomputed from the shingle strings, independently of the ids
            correct = [pair for pair in got if jaccard(sets[pair[0]], sets[pair[1]]) >= threshold]
            precision = len(correct) / len(got)
            assert recall >= 0.95, f"recall {recall:.3f} at {threshold}"
            assert precision >= 0.99, f"precision {precision:.3f} at {threshold}"
            for pair, j in got.items():
                assert j == pytest.approx(jaccard(sets[pair[0]], sets[pair[1]]), abs=1e-6)

        assert_that(results, check)


@pytest.mark.slow
def test_oversized_bucket_is_chained_and_reported(tmp_path):
    # 600 documents sharing all their text but a unique tail: every band of the shared part collides.
    shared = " ".join(f"boiler{i}" for i in range(300))
    units = [{"id": f"d{i:04d}", "text": f"{shared} unico{i} final{i}"} for i in range(600)]
    with TestPipeline() as p:
        sigs = read_units(p, tmp_path, units) | MinHashSignatures(MinHashParams())
        cands = sigs | LshCandidates(4, 32, max_bucket=50, oversize_window=3)
        n_pairs = cands["pairs"] | "CountPairs" >> beam.combiners.Count.Globally()
        sizes = cands["oversized"] | beam.Map(lambda r: r["size"]) | beam.combiners.ToList()

        def bounded(counts):
            # chains of window 3 in each of 4 bands: at most 4 * 3 * 600 pairs, not 600 * 599 / 2
            assert 599 <= counts[0] <= 4 * 3 * 600, counts

        def reported(lists):
            assert lists[0] and all(50 < s <= 600 for s in lists[0]) and max(lists[0]) > 300, lists

        assert_that(n_pairs, bounded, label="bounded")
        assert_that(sizes, reported, label="reported")


def test_units_without_tokens_are_skipped():
    with TestPipeline() as p:
        out = p | beam.Create([{"id": "a", "text": "¡¿…?!"}, {"id": "b", "text": "hola mundo"}]) \
            | MinHashSignatures(MinHashParams())
        assert_that(out | beam.Map(lambda s: s["id"]), equal_to(["b"]))
