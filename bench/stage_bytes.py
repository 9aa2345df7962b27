"""Bytes per page that the job's first fused stage hands to the runner's shuffle, by PCollection.

    python bench/stage_bytes.py --docs 1000 --out bench/results/stage-bytes.json

Why: Beam 2.62's Flink batch runner runs a fused stage as one bundle per partition and keeps that
bundle's whole output in the TaskManager's heap until the SDK worker has finished the bundle (README,
"20,000 pages do not complete on the default cluster"). The stage that splits, signs and keys the
units (PrepareUnits .. SignAndEmbed .. LexicalMatch, fused) has the largest output, so its bytes per page
times the pages of one partition is the heap a TaskManager needs. This measures each of its outputs
as the portable runners encode them (FastPrimitivesCoder, pickle for numpy arrays), on the engine
bench's corpus (libreoffice-help-es pages as HTML with 10% planted copies), in-process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402
from pipeline_bench import corpus  # noqa: E402
from prep_bench import fetch_pages  # noqa: E402


def _unit_outputs(job):
    """Signed unit -> [(name, element)]: what the stage emits for it, and the parts of the embed input
    (names starting "of which", not counted in the total)."""
    from pipelines.stages import EmbedKey
    from transforms.signals.lsh import band_keys

    cfg, settings, banding = job.cfg, job.unit_settings, job.cfg.banding()

    def outputs(u):
        key = EmbedKey.of(u, settings[u["unit_type"]], cfg.model, "")
        out = [("embed input (EmbedKey, text)", (key, u["text"])), ("of which bands (hex)", key.bands),
               ("of which shingles (base64)", key.shingles), ("of which tokens", key.tokens),
               ("of which text", u["text"])]
        if u["ids"].size:
            out += [("LSH band elements (band key, unit id)", (k, u["unit_id"]))
                    for k in band_keys(u["sig"], *banding[u["unit_type"]])]
            out.append(("signatures {id, sig, ids}", {"id": u["unit_id"], "sig": u["sig"], "ids": u["ids"]}))
        if u.get("tokens") is not None:
            out.append(("document tokens", (u["unit_id"], u["tokens"])))
        return out

    return outputs


def measure(inp: str, out: str) -> dict:
    """{PCollection name: [elements, encoded bytes]} for one run of the first stages over `inp`."""
    import apache_beam as beam
    from apache_beam import coders
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.config import JobConfig
    from pipelines.options import DedupOptions
    from pipelines.stages import CleanAndDetect, Job, PrepareUnits, ReadDocuments
    from transforms.signals.lsh import SignUnits

    opts = PipelineOptions(["--input", inp, "--output", out, "--vector_store", "memory"])
    cfg = JobConfig.from_options(opts.view_as(DedupOptions))
    job = Job.create(cfg)
    outputs = _unit_outputs(job)
    os.makedirs(out, exist_ok=True)
    result_path = os.path.join(out, "sizes.json")

    coder = coders.FastPrimitivesCoder()

    def encoded(named):
        return [(name, (1, len(coder.encode(el)))) for name, el in named]

    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        read = p | "Read" >> ReadDocuments(job)
        docs = (read["documents"] | "CleanAndDetect" >> CleanAndDetect(job))["documents"]
        prepared = docs | "PrepareUnits" >> PrepareUnits(job)
        signed = prepared["to_match"] | "Sign" >> SignUnits(cfg.minhash_params(), cfg.banding())
        measured = (signed | "SignedOutputs" >> beam.FlatMap(lambda u: encoded(outputs(u))),
                    prepared["units"] | "UnitRows" >> beam.FlatMap(lambda u: encoded([("units table rows", u)])))
        (measured | beam.Flatten()
         | beam.CombinePerKey(lambda vs: tuple(map(sum, zip(*vs))))
         | beam.combiners.ToList()
         | beam.Map(lambda kv: open(result_path, "w").write(json.dumps(dict(kv)))))
    with open(result_path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="stage-bytes-")
    docs = corpus(fetch_pages(tmp), args.docs)
    inp = os.path.join(tmp, "corpus.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    sizes = measure(inp, os.path.join(tmp, "out"))
    rows, total = {}, 0
    for name in sorted(sizes, key=lambda n: (n.startswith("of which"), -sizes[n][1])):
        count, size = sizes[name]
        part = name.startswith("of which")
        rows[name] = {"elements": count, "bytes": size, "bytes_per_page": round(size / args.docs)}
        total += 0 if part else size
        print(f"{'  ' * part + name:<42} {count:>9} elements {size / 2**20:>8.1f} MB {size / args.docs:>8.0f} B/page")
    per_page = round(total / args.docs)
    print(f"{'shuffled by the stage, in all':<42} {'':>18} {total / 2**20:>8.1f} MB {per_page:>8} B/page; "
          f"one partition of 10,000 pages: {per_page * 10_000 / 2**20:.0f} MB")
    write_result({"benchmark": "stage_bytes", "docs": args.docs, "outputs": rows, "bytes_per_page": per_page,
                  "note": "encoded with FastPrimitivesCoder as the portable runners do; one partition of a "
                          "20,000-page job on two TaskManagers holds ~10,000 pages"}, args.out)


if __name__ == "__main__":
    main()
