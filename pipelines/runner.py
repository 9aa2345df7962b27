"""Local runner choice.

Beam 2.77's DirectRunner first tries the Prism runner, which downloads a binary from the internet.
For the DirectRunner we go straight to the FnApiRunner it would fall back to (same semantics,
`--direct_running_mode` and `--direct_num_workers` honoured), so a local run never leaves the machine.
"""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner


class OfflineDirectRunner(PipelineRunner):
    """The DirectRunner's FnApiRunner path, without the Prism download attempt."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=info).run_pipeline(pipeline, options)


def is_direct(options: PipelineOptions) -> bool:
    """True when `options` ask for the DirectRunner (or name no runner)."""
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


def choose_runner(options: PipelineOptions):
    """The runner object for `options`: OfflineDirectRunner for DirectRunner (or none given), else None
    (Beam resolves --runner itself)."""
    return OfflineDirectRunner() if is_direct(options) else None


def local_torch_threads(options: PipelineOptions) -> int:
    """torch threads per worker process for a local run: the cores shared among the DirectRunner's
    multi_processing workers (torch's default, one thread per core in every process, oversubscribes
    the cores); 0 (torch's default) in-process or on other runners."""
    import os

    from apache_beam.options.pipeline_options import DirectOptions

    if not is_direct(options):
        return 0
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode != "multi_processing":
        return 0
    workers = direct.direct_num_workers or 1
    if workers <= 0:
        workers = os.cpu_count() or 1
    return max(1, (os.cpu_count() or 1) // workers)


def progress_workers(options: PipelineOptions) -> int:
    """Processes sharing a stage, for progress estimates: 1 in-process, N local workers, 0 unknown."""
    from apache_beam.options.pipeline_options import DirectOptions

    if not is_direct(options):
        return 0
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode == "in_memory" or not direct.direct_running_mode:
        return 1
    import os
    workers = direct.direct_num_workers or 1
    return workers if workers > 0 else (os.cpu_count() or 1)
