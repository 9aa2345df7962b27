"""The run document beside a physical vector index: what a reader needs to treat new text as the job did.

    done = templates | WriteRunState(es_config, state)     # singleton, once the document is written
    state = read_run_state(client, physical_index)         # the dict below, or None

`<physical index>-run` holds one document (`_id` "run"), replaced by every run that writes the index
(a full run's fresh slot, or an incremental run's live one) and switched with its slot by the alias:

    {"run_id", "mode", "written_at" (ISO UTC), "settings" (JobConfig.settings(): every option; secrets
     are only names of where to find them), "unit_settings" ({unit_type: state string}, as on every
     indexed unit), "model" (name, fingerprint, dims), "templates" ([[key, documents], ...]: the
     template paragraph keys of the corpus, transforms/text/templates.py), "frames" (unit ids of the
     indexed passages found to be template frames, whose matches the job drops; an incremental run adds
     its own to the stored ones)}

The draft-check service (service/) reads it through the alias: the same settings, decision rule and
template text as the run that built the index, and a refusal when its own model or settings differ.
"""
from __future__ import annotations

import datetime
from typing import Optional

import apache_beam as beam

from transforms.io.elasticsearch_store import EsConfig

RUN_SUFFIX = "-run"
RUN_DOC_ID = "run"
RUN_MAPPING = {"dynamic": False, "properties": {"run_id": {"type": "keyword"}, "written_at": {"type": "date"}}}


def run_index(physical_index: str) -> str:
    """The index beside a physical vector index that holds its run document."""
    return physical_index + RUN_SUFFIX


def read_run_state(client, physical_index: str) -> Optional[dict]:
    """The run document of `physical_index`, or None (an index built before run documents existed)."""
    from elasticsearch import NotFoundError

    try:
        return client.get(index=run_index(physical_index), id=RUN_DOC_ID)["_source"]
    except NotFoundError:
        return None


def write_run_state(client, physical_index: str, state: dict) -> None:
    index = run_index(physical_index)
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index, mappings=RUN_MAPPING,
                                  settings={"number_of_shards": 1, "number_of_replicas": 0})
        except Exception as exc:  # noqa: BLE001 - a concurrent create is fine
            if "resource_already_exists" not in str(exc):
                raise
    client.index(index=index, id=RUN_DOC_ID, document=state, refresh="wait_for")


class WriteRunState(beam.PTransform):
    """{"templates": Template rows, "frames": frame unit ids} -> a singleton (number of template keys),
    emitted once the run document (`state` plus templates, frames and `written_at`) is in
    `<physical index>-run`. In an incremental run (`state["mode"]`) the stored frames are kept too."""

    def __init__(self, config: EsConfig, state: dict):
        super().__init__()
        self.config, self.state = config, dict(state)

    def expand(self, sources):
        config, state = self.config, self.state
        keys = (sources["templates"] | "TemplateKeys" >> beam.Map(lambda t: (t["key"], int(t["documents"])))
                | "AllTemplateKeys" >> beam.combiners.ToList())
        frames = sources["frames"] | "AllFrames" >> beam.combiners.ToList()

        def write(template_keys, frame_ids):
            client = config.client()
            try:
                frame_ids = set(frame_ids)
                if state.get("mode") == "incremental":
                    frame_ids |= set((read_run_state(client, config.physical_index) or {}).get("frames") or [])
                doc = {**state, "templates": sorted([list(kv) for kv in template_keys]), "frames": sorted(frame_ids),
                       "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
                write_run_state(client, config.physical_index, doc)
            finally:
                client.close()
            return len(template_keys)

        return keys | "WriteRunDocument" >> beam.Map(write, beam.pvalue.AsSingleton(frames))
