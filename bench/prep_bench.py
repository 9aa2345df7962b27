"""Preparation-stage benchmark on realistic Spanish HTML: the Debian package libreoffice-help-es
(2,561 help pages, MPL-2.0), fetched with `apt-get download` and unpacked into a temp dir.

    python bench/prep_bench.py --repeats 3 --out bench/results/prep.json

Beam stage: ReadCorpus (HTML files) -> DropDuplicateIds -> CleanText (lxml chrome removal +
trafilatura) -> DetectLanguage -> SplitUnits, DirectRunner multi_processing with 2 workers.
Baseline in the same run: the extraction library alone (trafilatura.extract on each page's HTML,
read from disk), with a 2-process pool. Medians of the repeats.
"""
from __future__ import annotations

import argparse
import glob
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _results import write_result  # noqa: E402

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipelines.runner import OfflineDirectRunner  # noqa: E402
from transforms.io.ingest import DropDuplicateIds, ReadCorpus, SourceConfig  # noqa: E402
from transforms.text.language import DetectLanguage  # noqa: E402
from transforms.text.normalize import CleanDocuments  # noqa: E402
from transforms.text.units import SplitUnits  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fetch_pages(workdir: str) -> list[str]:
    """Downloads and unpacks libreoffice-help-es (no system install); returns the HTML paths."""
    subprocess.run(["apt-get", "download", "libreoffice-help-es"], cwd=workdir, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    debs = glob.glob(os.path.join(workdir, "libreoffice-help-es_*.deb"))
    if not debs:  # package lists not loaded yet on a fresh machine
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "download", "libreoffice-help-es"], cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL)
        debs = glob.glob(os.path.join(workdir, "libreoffice-help-es_*.deb"))
    subprocess.run(["dpkg", "-x", debs[0], os.path.join(workdir, "pkg")], check=True)
    return sorted(glob.glob(os.path.join(workdir, "pkg", "**", "*.html"), recursive=True))


def _extract(paths: list[str]) -> int:
    import trafilatura

    chars = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            chars += len(trafilatura.extract(f.read(), output_format="txt", include_tables=True,
                                             favor_recall=True, deduplicate=False) or "")
    return chars


def bare(paths: list[str]) -> float:
    start = time.perf_counter()
    chunks = [paths[i::8] for i in range(8)]
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_extract, chunks)
    return len(paths) / (time.perf_counter() - start)


def beam_prep(pattern: str, n: int) -> float:
    opts = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    start = time.perf_counter()
    with beam.Pipeline(runner=OfflineDirectRunner(), options=opts) as p:
        read = p | ReadCorpus(SourceConfig(pattern=pattern, fmt="html"))
        docs = read.documents | DropDuplicateIds()
        cleaned = docs.documents | CleanDocuments(min_chars=20)
        units = cleaned.documents | DetectLanguage() | SplitUnits(("document", "paragraph", "sentence"))
        _ = units | beam.combiners.Count.Globally() | beam.Map(lambda c: print(f"    units {c}", file=sys.stderr))
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "prep.json"))
    args = ap.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = fetch_pages(tmp)
        pattern = os.path.join(tmp, "pkg", "**", "*.html")
        print(f"corpus: {len(paths)} HTML pages, {sum(os.path.getsize(p) for p in paths) / 2**20:.1f} MB")
        bare_rates, beam_rates = [], []
        for r in range(args.repeats):
            bare_rates.append(bare(paths))
            beam_rates.append(beam_prep(pattern, len(paths)))
            print(f"  repeat {r + 1}: trafilatura alone {bare_rates[-1]:.0f} pages/s, "
                  f"Beam preparation {beam_rates[-1]:.0f} pages/s")
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cores": os.cpu_count(), "pages": len(paths),
              "bare_trafilatura_pages_per_s": round(statistics.median(bare_rates)),
              "beam_prep_pages_per_s": round(statistics.median(beam_rates)),
              "runs": {"bare": [round(x) for x in bare_rates], "beam": [round(x) for x in beam_rates]}}
    result["ratio"] = round(result["beam_prep_pages_per_s"] / result["bare_trafilatura_pages_per_s"], 3)
    print(f"\n| stage (2 processes) | pages/s (median of {args.repeats}) |\n|---|---|")
    print(f"| trafilatura.extract alone | {result['bare_trafilatura_pages_per_s']} |")
    print(f"| Beam: read + dedupe ids + clean + language + split (DirectRunner) | {result['beam_prep_pages_per_s']} |")
    print(f"ratio {result['ratio']:.2f}")
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
