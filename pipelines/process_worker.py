"""Boot program of Beam's PROCESS environment: starts one Python SDK worker for a portable runner.

A portable runner (Flink, Spark) started with `--environment_type=PROCESS` runs a boot command on each
of its workers as `<command> --id=<worker id> --provision_endpoint=<host:port>`. The SDK container's
Go `boot` does that job in Docker, but is not published on PyPI; this module is its Python equivalent
for machines where the job's virtualenv already holds the code (nothing staged is fetched):

1. asks the runner's provision service for the worker's ProvisionInfo (pipeline options, logging and
   control endpoints, runner capabilities);
2. sets the environment variables `apache_beam.runners.worker.sdk_worker_main` reads;
3. sends its own and the worker's stdout/stderr to `$NEAR_DUP_WORKER_LOGS/sdk-worker-<pid>.log`
   (default: `<tmp>/near-dup-workers`): the engine discards a PROCESS worker's output, so a worker
   that dies before it reaches the runner's logging service would otherwise leave no trace;
4. replaces itself with that worker, in the same interpreter.

`scripts/flink-sdk-boot` is the executable wrapper the runner is pointed at.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

_WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"


def provision_info(endpoint: str, worker_id: str, timeout_s: float = 60.0):
    """The ProvisionInfo the runner serves at `endpoint` for `worker_id`."""
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        response = stub.GetProvisionInfo(beam_provision_api_pb2.GetProvisionInfoRequest(),
                                         metadata=[("worker_id", worker_id)], timeout=timeout_s)
    return response.info


def worker_environment(info, worker_id: str, semi_persistent_dir: str) -> dict[str, str]:
    """The environment variables sdk_worker_main reads, from a ProvisionInfo."""
    from google.protobuf import json_format, text_format

    env = {
        "WORKER_ID": worker_id,
        "PIPELINE_OPTIONS": json.dumps(json_format.MessageToDict(info.pipeline_options)),
        "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(info.logging_endpoint, as_one_line=True),
        "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(info.control_endpoint, as_one_line=True),
        "SEMI_PERSISTENT_DIRECTORY": semi_persistent_dir,
        "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
    }
    if info.HasField("status_endpoint") and info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint, as_one_line=True)
    return env


def worker_folder(*parts: str) -> str:
    """The SDK workers' folder (or one inside it), created: $NEAR_DUP_WORKER_LOGS or <tmp>/near-dup-workers."""
    folder = os.path.join(os.environ.get("NEAR_DUP_WORKER_LOGS") or os.path.join(tempfile.gettempdir(),
                                                                                  "near-dup-workers"), *parts)
    os.makedirs(folder, exist_ok=True)
    return folder


def worker_log_path() -> str:
    """Where this worker process writes its output (the folder is created)."""
    return os.path.join(worker_folder(), f"sdk-worker-{os.getpid()}.log")


def scratch_folder() -> str:
    """The SDK workers' semi-persistent folder: one, shared, beside their logs (created). The worker
    writes nothing there when nothing is staged (the job stages nothing); a fresh temporary folder per
    worker left one empty folder in /tmp for every worker ever started (98 after a day's runs)."""
    return worker_folder("scratch")


def redirect_output(path: str) -> None:
    """Points file descriptors 1 and 2 (kept across exec) at `path`, appended."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def job_name(options: dict) -> str:
    """The job name in provisioned pipeline options (keys `job_name` or `beam:option:job_name:v1`)."""
    options = options.get("options", options)
    return str(options.get("job_name") or options.get("beam:option:job_name:v1") or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", required=True, help="worker id given by the runner")
    parser.add_argument("--provision_endpoint", required=True, help="host:port of the provision service")
    parser.add_argument("--semi_persist_dir", default="", help="scratch folder (default: scratch/ beside the worker logs)")
    args, _ = parser.parse_known_args(argv)  # logging/artifact/control endpoints also come in the ProvisionInfo
    info = provision_info(args.provision_endpoint, args.id)
    scratch = args.semi_persist_dir or scratch_folder()
    env = worker_environment(info, args.id, scratch)
    os.environ.update(env)
    redirect_output(worker_log_path())
    # The first line of each worker's log: which job, which process, started by which engine process.
    print(f"near-dup: SDK worker {args.id} (pid {os.getpid()}, started by pid {os.getppid()}) starting for job "
          f"{job_name(json.loads(env['PIPELINE_OPTIONS']))}", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, "-m", _WORKER_MAIN])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
