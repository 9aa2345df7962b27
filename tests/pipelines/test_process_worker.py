"""The PROCESS-environment boot program and the job's runner-independence helpers (no engine needed)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from apache_beam.portability.api import beam_provision_api_pb2, endpoints_pb2
from google.protobuf import struct_pb2

from pipelines.options import DedupOptions
from pipelines.process_worker import job_name, worker_environment
from pipelines.runner import absolute_paths, default_process_environment

REPO = Path(__file__).resolve().parents[2]


def test_worker_environment_carries_what_sdk_worker_main_reads(tmp_path):
    options = struct_pb2.Struct()
    options.update({"beam:option:job_name:v1": "nightly", "beam:option:output:v1": "/data/out"})
    info = beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=options, runner_capabilities=["beam:protocol:control_response_elements_embedding:v1"],
        logging_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:4001"),
        control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:4002"))
    env = worker_environment(info, "1-1", str(tmp_path))
    assert env["WORKER_ID"] == "1-1" and env["SEMI_PERSISTENT_DIRECTORY"] == str(tmp_path)
    assert env["LOGGING_API_SERVICE_DESCRIPTOR"] == 'url: "localhost:4001"'
    assert env["CONTROL_API_SERVICE_DESCRIPTOR"] == 'url: "localhost:4002"'
    assert env["RUNNER_CAPABILITIES"] == "beam:protocol:control_response_elements_embedding:v1"
    assert "STATUS_API_SERVICE_DESCRIPTOR" not in env
    assert job_name(json.loads(env["PIPELINE_OPTIONS"])) == "nightly"
    # What the SDK worker itself makes of the options it is handed.
    from apache_beam.runners.worker.sdk_worker_main import _parse_pipeline_options
    assert _parse_pipeline_options(env["PIPELINE_OPTIONS"]).get_all_options()["job_name"] == "nightly"


def test_boot_program_refuses_to_start_without_its_arguments():
    boot = REPO / "scripts" / "flink-sdk-boot"
    result = subprocess.run([str(boot)], capture_output=True, text=True,
                            env={**os.environ, "NEAR_DUP_PYTHON": sys.executable})
    assert result.returncode == 2 and "--id" in result.stderr and "--provision_endpoint" in result.stderr


def test_local_paths_become_absolute_and_remote_ones_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    opts = PipelineOptions(["--input", "data/*.jsonl", "--output", "out", "--model", "model"]).view_as(DedupOptions)
    assert absolute_paths(opts) == ["input", "output", "model"]
    assert (opts.input, opts.output, opts.model) == (f"{tmp_path}/data/*.jsonl", f"{tmp_path}/out", f"{tmp_path}/model")
    remote = PipelineOptions(["--input", "gs://b/docs/*.jsonl", "--output", "gs://b/run"]).view_as(DedupOptions)
    assert absolute_paths(remote) == [] and remote.input == "gs://b/docs/*.jsonl" and remote.model == DedupOptions().model


def test_process_environment_defaults_to_this_repository_and_interpreter():
    options = PipelineOptions(["--environment_type=PROCESS"])
    assert default_process_environment(options)
    config = json.loads(options.view_as(PortableOptions).environment_config)
    assert config == {"command": str(REPO / "scripts" / "flink-sdk-boot"), "env": {"NEAR_DUP_PYTHON": sys.executable}}
    assert os.access(config["command"], os.X_OK)
    given = PipelineOptions(["--environment_type=PROCESS", '--environment_config={"command": "/opt/boot"}'])
    assert not default_process_environment(given)
    assert json.loads(given.view_as(PortableOptions).environment_config) == {"command": "/opt/boot"}
    assert not default_process_environment(PipelineOptions(["--environment_type=LOOPBACK"]))


def test_workers_share_one_scratch_folder_beside_their_logs(tmp_path, monkeypatch):
    """Not a fresh temporary folder per worker: those piled up in /tmp, one per worker ever started."""
    from pipelines.process_worker import scratch_folder

    monkeypatch.setenv("NEAR_DUP_WORKER_LOGS", str(tmp_path / "logs"))
    first, second = scratch_folder(), scratch_folder()
    assert first == second == str(tmp_path / "logs" / "scratch") and os.path.isdir(first)
    assert os.listdir(tmp_path) == ["logs"]


def test_flinks_batch_execution_mode_is_accepted_and_sent_to_the_job_server():
    """--execution_mode_for_batch is a Java runner option: declared here so the job accepts it, and
    encoded with the others into what the job server reads; a value Flink does not know is refused."""
    import pytest
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    from pipelines.options import check_arguments, unknown_arguments

    check_arguments(["--execution_mode_for_batch=BATCH_FORCED", "--parallelism=8"])
    options = PipelineOptions(["--runner=PortableRunner", "--execution_mode_for_batch=BATCH_FORCED"])
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    assert encoded["beam:option:execution_mode_for_batch:v1"] == "BATCH_FORCED"
    assert "beam:option:execution_mode_for_batch:v1" not in JobServiceHandle.encode_pipeline_options(
        PipelineOptions(["--runner=PortableRunner"]).get_all_options())  # unset: Flink's default
    with pytest.raises(SystemExit):
        unknown_arguments(["--execution_mode_for_batch=FAST"])
