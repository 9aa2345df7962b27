"""The JSON body of a flexTemplates:launch request (Cloud Scheduler and Data Pipelines use it).

    python templates/launch_body.py --template gs://b/templates/near-dup.json --image IMAGE \
        --params 'input=gs://b/corpus/*.jsonl,output=gs://b/runs/nightly'

Parameters are checked against metadata.json's regexes before anything is scheduled, so a typo fails
here and not at 3 a.m.; `output` gets the launch date appended by Dataflow's templating only if you
add it yourself (each nightly run is its own run_id from input and settings).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_params(text: str) -> dict[str, str]:
    """'a=1,b=x' -> {"a": "1", "b": "x"}; values may contain commas only inside a rule (quoted use)."""
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"parameter without '=': {part!r}")
        name, value = part.split("=", 1)
        params[name.strip()] = value.strip()
    return params


def validate(params: dict[str, str], metadata: dict) -> None:
    spec = {p["name"]: p for p in metadata["parameters"]}
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(f"unknown template parameter(s): {unknown}")
    missing = sorted(n for n, p in spec.items() if not p["isOptional"] and n not in params)
    if missing:
        raise ValueError(f"missing required parameter(s): {missing}")
    for name, value in params.items():
        for regex in spec[name].get("regexes", []):
            if not re.fullmatch(regex, value):
                raise ValueError(f"parameter {name}={value!r} does not match {regex}")


def launch_body(template: str, image: str, params: dict[str, str], job_name: str = "near-dup-scheduled") -> dict:
    return {"launchParameter": {
        "jobName": job_name, "containerSpecGcsPath": template, "parameters": params,
        "environment": {"sdkContainerImage": image, "additionalExperiments": ["use_runner_v2"]}}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--params", required=True)
    ap.add_argument("--job_name", default="near-dup-scheduled")
    args = ap.parse_args(argv)
    with open(os.path.join(HERE, "metadata.json"), encoding="utf-8") as handle:
        metadata = json.load(handle)
    params = parse_params(args.params)
    try:
        validate(params, metadata)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(launch_body(args.template, args.image, params, args.job_name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
