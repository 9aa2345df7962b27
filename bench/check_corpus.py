"""A draft-check index corpus of >= 50k units from real documentation sites (issue 24's load target).

    python bench/check_corpus.py --workdir out/sites --out out/check-big [--fr_share 0.17]

Writes OUT/docs.jsonl: libreoffice-help-es, gimp-help-es and debian-reference-es with planted copies
(transforms.evaluation.site_corpus.plant_copies), all of libreoffice-help-pt and a `--fr_share` of
libreoffice-help-fr's pages (every k-th page by path); and OUT/fresh.jsonl: the other French pages,
never indexed, for `bench/check_bench.py --fresh` ("new" drafts). Page ids are prefixed with the
package so one help page in three languages stays three documents.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.evaluation.site_corpus import plant_copies, site_pages  # noqa: E402


def pages_of(package: str, workdir: str) -> list[dict]:
    """site_pages with ids unique across packages: '<package>-<sha1(path)[:10]>'."""
    pages = site_pages(package, workdir)
    for p in pages:
        p["id"] = f"{package}-{p['id'].split('-', 1)[1]}"
    return pages


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="out/sites", help="where the Debian packages are unpacked")
    parser.add_argument("--out", required=True, help="folder for docs.jsonl and fresh.jsonl")
    parser.add_argument("--fr_share", type=float, default=0.17, help="share of French pages indexed")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    docs: list[dict] = []
    for package in ("libreoffice-help-es", "gimp-help-es", "debian-reference-es"):
        planted, _gold = plant_copies(pages_of(package, args.workdir), seed=1, per_kind=6)
        docs.extend(planted)
    docs.extend({"id": p["id"], "url": p["url"], "title": p["title"], "text": p["text"]}
                for p in pages_of("libreoffice-help-pt", args.workdir))
    french = pages_of("libreoffice-help-fr", args.workdir)
    every = max(1, round(1 / args.fr_share))
    indexed = [p for i, p in enumerate(french) if i % every == 0]
    fresh = [p for i, p in enumerate(french) if i % every != 0]
    docs.extend({"id": p["id"], "url": p["url"], "title": p["title"], "text": p["text"]} for p in indexed)
    for name, rows in (("docs.jsonl", docs), ("fresh.jsonl", fresh)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({k: row[k] for k in ("id", "url", "title", "text") if k in row},
                                        ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents -> {args.out}/docs.jsonl; {len(fresh)} fresh pages -> {args.out}/fresh.jsonl")


if __name__ == "__main__":
    main()
