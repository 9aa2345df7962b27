"""Bare embedding throughput on whatever device is there (CUDA if available, else CPU): the
baseline the Beam embedding stage is compared with, and the GPU data point.

    python bench/embed_gpu.py --model DIR --texts texts.jsonl [--limit 20000]

Prints tokens/s and texts/s for: unsorted fixed batches vs one length-sorted encode call, fp32 vs
fp16 vs bf16, at several batch sizes; and the mean/min cosine of fp16/bf16 vectors to fp32 ones.
Only torch and sentence-transformers are needed (the GPU machine has no Beam).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def timed(fn, sync):
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    texts = [json.loads(line) for line in open(args.texts, encoding="utf-8")][: args.limit]
    model = SentenceTransformer(args.model, device=device)
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{torch.get_num_threads()}"
    print(f"device {name}; torch {torch.__version__}; {len(texts)} texts, {tokens} tokens "
          f"({tokens / len(texts):.0f}/text)")
    results = {"device": name, "texts": len(texts), "tokens": tokens, "runs": []}
    model.encode(texts[:256], batch_size=64)  # warm-up (CUDA context, kernels)
    reference = None
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        if device == "cpu" and dtype == torch.float16:
            continue
        model = model.to(dtype)
        model.encode(texts[:256], batch_size=64)
        for batch in ((32, 128, 512) if device == "cuda" else (32,)):
            for mode in ("sorted", "unsorted"):
                if mode == "sorted":  # one call: encode() sorts by length internally
                    vecs, secs = timed(lambda: model.encode(texts, batch_size=batch, normalize_embeddings=True,
                                                            convert_to_numpy=True), sync)
                else:  # what a naive pipeline does: one call per arriving batch, no sorting across them
                    vecs, secs = timed(lambda: np.concatenate([
                        model.encode(texts[i:i + batch], batch_size=batch, normalize_embeddings=True,
                                     convert_to_numpy=True) for i in range(0, len(texts), batch)]), sync)
                vecs = vecs.astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)  # normalised in fp32, like the pipeline's use
                if reference is None:
                    reference = vecs
                cos = (vecs * reference).sum(axis=1)
                row = {"dtype": str(dtype).replace("torch.", ""), "batch": batch, "mode": mode,
                       "seconds": round(secs, 3), "texts_per_s": round(len(texts) / secs),
                       "tokens_per_s": round(tokens / secs), "cos_mean": round(float(cos.mean()), 6),
                       "cos_min": round(float(cos.min()), 6)}
                results["runs"].append(row)
                print(f"  {row['dtype']:<9} batch {batch:<4} {mode:<8} {row['texts_per_s']:>8,} texts/s "
                      f"{row['tokens_per_s']:>10,} tokens/s  cos to fp32 mean {row['cos_mean']:.6f} min {row['cos_min']:.6f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
