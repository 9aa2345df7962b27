"""Generates templates/metadata.json (the Flex Template's parameters) from pipelines/options.py.

    python templates/build_metadata.py            # rewrite metadata.json
    python templates/build_metadata.py --check    # exit 1 if metadata.json is out of date

Every option of DedupOptions becomes a parameter with its help text, a label, `isOptional` (only
--output is required; the input is one of --input, --bq_table, --bq_query) and a regex that the
Dataflow console checks before launching: by type (int, float, bool, choices) or, for strings, from
REGEXES below. Secrets are never parameters: only the *names* of environment variables or Secret
Manager versions that hold them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HERE = os.path.dirname(os.path.abspath(__file__))
METADATA = os.path.join(HERE, "metadata.json")
REQUIRED = {"output"}

_GCS_OR_LOCAL = r"^(gs://[a-z0-9][-_.a-z0-9]*[a-z0-9](/[^\n\r]*)?|(?!gs:)[^\s:][^\n\r]*)$"
_LIST = r"^[a-z_]+(,[a-z_]+)*$"
REGEXES = {  # string options: what a valid value looks like
    "input": r"^(gs://[a-z0-9][-_.a-z0-9]*[a-z0-9]/[^\n\r]+|(?!gs:)[^\s:][^\n\r]*)$",
    "output": _GCS_OR_LOCAL,
    "bq_table": r"^([a-z][-a-z0-9]{4,28}[a-z0-9][:.])?[A-Za-z0-9_]+\.[-A-Za-z0-9_$ ]+$",
    "bq_query": r"^\s*([Ss][Ee][Ll][Ee][Cc][Tt]|[Ww][Ii][Tt][Hh])\b[\s\S]+$",
    "bq_output_dataset": r"^([a-z][-a-z0-9]{4,28}[a-z0-9][:.])?[A-Za-z0-9_]+$",
    "run_date": r"^\d{4}-\d{2}-\d{2}$",
    "run_id": r"^[A-Za-z0-9][-_.A-Za-z0-9]{0,63}$",
    "id_field": r"^[A-Za-z_][A-Za-z0-9_.]*$", "text_field": r"^[A-Za-z_][A-Za-z0-9_.]*$",
    "title_field": r"^[A-Za-z_][A-Za-z0-9_.]*$", "url_field": r"^[A-Za-z_][A-Za-z0-9_.]*$",
    "lang_field": r"^[A-Za-z_][A-Za-z0-9_.]*$", "published_at_field": r"^[A-Za-z_][A-Za-z0-9_.]*$",
    "extra_fields": r"^[A-Za-z_][A-Za-z0-9_.]*(,[A-Za-z_][A-Za-z0-9_.]*)*$",
    "units": r"^(document|paragraph|sentence)(,(document|paragraph|sentence))*$",
    "match_units": r"^(document|paragraph|sentence)(,(document|paragraph|sentence))*$",
    "output_formats": r"^(parquet|jsonl)(,(parquet|jsonl))?$",
    "model": r"^(gs://[a-z0-9][-_.a-z0-9]*[a-z0-9]/[^\s]+|[A-Za-z0-9][-_.A-Za-z0-9/]*)$",
    "device": r"^(cpu|cuda(:\d+)?)$",
    "es_url": r"^https?://[^\s/]+(/[^\s]*)?$",
    "es_cloud_id": r"^[^\s:]+:[A-Za-z0-9+/=]+$",
    "es_index": r"^[a-z0-9][-_.a-z0-9]{0,200}$",
    "es_api_key_env": r"^[A-Z_][A-Z0-9_]*$", "es_password_env": r"^[A-Z_][A-Z0-9_]*$",
    "es_api_key_secret": r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$",
    "es_password_secret": r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$",
    "es_username": r"^[^\s:]{1,256}$",
    "es_ca_certs": _GCS_OR_LOCAL,
    "rule": r"^[\sa-z0-9_.()<>=!]+$", "unit_rule": r"^[\sa-z0-9_.()<>=!]+$",
    "signals": r"^(knn|minhash)(,(knn|minhash))?$",
    "canonical_policy": _LIST,
    "preferred_url": r"^[^\n\r]{1,500}$",
}


def dedup_actions() -> list[argparse.Action]:
    """The argparse actions DedupOptions declares (not Beam's own options)."""
    from pipelines.options import DedupOptions

    parser = argparse.ArgumentParser()
    DedupOptions._add_argparse_args(parser)
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def regex_for(action: argparse.Action) -> str:
    if action.choices:
        return "^(" + "|".join(re.escape(str(c)) for c in action.choices) + ")$"
    if action.type is int:
        return r"^-?[0-9]+$"
    if action.type is float:
        return r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE]-?[0-9]+)?$"
    if getattr(action.type, "__name__", "") == "_bool":
        return "^(true|false|True|False|1|0|yes|no)$"
    if action.dest not in REGEXES:
        raise KeyError(f"option --{action.dest} has no regex in templates/build_metadata.py REGEXES")
    return REGEXES[action.dest]


_WORDS = {"es": "Elasticsearch", "bq": "BigQuery", "knn": "kNN", "lsh": "LSH", "url": "URL", "id": "ID",
          "ca": "CA", "minhash": "MinHash", "api": "API"}


def label(dest: str) -> str:
    words = [_WORDS.get(w, w) for w in dest.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:]] + words[1:])


def build() -> dict:
    params = []
    for action in dedup_actions():
        help_text = action.help or ""
        if action.default not in (None, "") and "default" not in help_text.lower():
            help_text = f"{help_text} (default: {action.default})"
        params.append({"name": action.dest, "label": label(action.dest), "helpText": help_text,
                       "isOptional": action.dest not in REQUIRED, "regexes": [regex_for(action)]})
    return {
        "name": "Near-duplicate content detection",
        "description": "Finds copied, lightly edited, rewritten and re-wrapped documents (Sentence-BERT kNN in "
                       "Elasticsearch and MinHash LSH), writes the duplicates table with evidence, duplicate "
                       "groups with canonical documents, a summary and an HTML report; optionally BigQuery tables.",
        "streaming": False,
        "supportsAtLeastOnce": False,
        "supportsExactlyOnce": True,
        "defaultStreamingMode": "UNSPECIFIED",
        "parameters": params,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--check", action="store_true")
    check = args.parse_args(argv).check
    text = render()
    if check:
        with open(METADATA, encoding="utf-8") as handle:
            if handle.read() != text:
                print("templates/metadata.json is out of date: python templates/build_metadata.py", file=sys.stderr)
                return 1
        return 0
    with open(METADATA, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {METADATA} ({len(build()['parameters'])} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
