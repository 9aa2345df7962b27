"""Every searched unit's kNN neighbourhood, stored beside the vector index for the draft check.

    written = neighbours | WriteNeighbourhoods(es_config, generation)   # (unit id, [(id, cosine)])
    found = read_neighbourhoods(client, physical, unit_ids, generation)  # {unit id: (neighbours, mean)}

The job searches the k nearest neighbours of every unit it matches (transforms/matching/knn.py); the
mean of their cosines is the denominator of a pair's margin. The draft-check service (service/) needs
the same neighbourhood for every stored unit a draft's candidate names; searching it again costs one
kNN query per candidate (~80 for a draft that touches 40 documents). So the job writes what its
searches returned into `<physical index>-around`, one document per unit (`_id` as the unit's vector):

    {"unit_id", "generation", "neighbours": [unit ids, in the order the search returned them],
     "cosines": [their cosines]}

A row is exact only for the index its search saw: a full run's rows are the final index's (it searches
after the last write and the force-merge), an incremental run's are exact for the units it searched
(its new units, its re-queried ones and the stored ends of its pairs), while any other unit may since
have gained a new neighbour. Each job execution has a fresh `generation` (a run id repeats when the
input and settings do), written into its rows and its run document (transforms/io/run_state.py);
a reader takes a row only when the two agree and searches the others itself.
"""
from __future__ import annotations

import uuid
from typing import Optional

import apache_beam as beam

from transforms.incremental.state import es_id_of_unit
from transforms.io.elasticsearch import BulkWrite, EsConnection

AROUND_SUFFIX = "-around"
AROUND_MAPPING = {"dynamic": False, "properties": {"unit_id": {"type": "keyword"}, "generation": {"type": "keyword"}}}


def around_index(physical_index: str) -> str:
    """The index beside a physical vector index that holds its units' neighbourhoods."""
    return physical_index + AROUND_SUFFIX


def new_generation() -> str:
    """A token naming one execution of the job (not deterministic on purpose: see the module doc)."""
    return uuid.uuid4().hex[:16]


def ensure_around_index(client, index: str) -> bool:
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index, mappings=AROUND_MAPPING,
                                  settings={"number_of_shards": 1, "number_of_replicas": 0})
        except Exception as exc:  # noqa: BLE001 - another worker created it first
            if "resource_already_exists" not in str(exc):
                raise
    return True


def around_action(unit_id: str, neighbours: list, index: str, generation: str) -> dict:
    """(unit id, [(neighbour id, cosine)]) -> its bulk `index` action (deterministic _id)."""
    return {"_op_type": "index", "_index": index, "_id": es_id_of_unit(unit_id),
            "_source": {"unit_id": unit_id, "generation": generation,
                        "neighbours": [str(o) for o, _ in neighbours], "cosines": [float(c) for _, c in neighbours]}}


def row_to_neighbourhood(source: dict) -> tuple[list[tuple[str, float]], Optional[float]]:
    """A stored row -> (neighbours, mean cosine), as `read_knn_result` returns them for the same search."""
    neighbours = list(zip(source.get("neighbours") or [], (float(c) for c in source.get("cosines") or [])))
    return neighbours, (sum(c for _, c in neighbours) / len(neighbours) if neighbours else None)


def read_neighbourhoods(client, physical_index: str, unit_ids: list[str], generation: Optional[str]) -> dict:
    """{unit id: (neighbours, mean)} for those of `unit_ids` stored by the run `generation` names (an
    older row, or no index beside it: left out, the caller searches them)."""
    if not unit_ids or not generation:
        return {}
    response = client.mget(index=around_index(physical_index), ids=[es_id_of_unit(u) for u in unit_ids])
    out = {}
    for unit_id, doc in zip(unit_ids, response["docs"]):
        src = doc.get("_source") if doc.get("found") else None
        if src and src.get("generation") == generation and src.get("unit_id") == unit_id:
            out[unit_id] = row_to_neighbourhood(src)
    return out


class WriteNeighbourhoods(beam.PTransform):
    """(unit id, [(neighbour id, cosine)]) (a PCollection or a tuple of them) -> unit ids written to
    `<physical>-around` (tagged `written`, `dead_letter` as every bulk write of the job)."""

    def __init__(self, conn: EsConnection, physical_index: str, generation: str, *, batch_size: int = 1000):
        super().__init__()
        self.conn, self.index, self.generation, self.batch_size = conn, around_index(physical_index), generation, batch_size

    def expand(self, neighbours):
        index, generation = self.index, self.generation
        if isinstance(neighbours, (tuple, list)):  # the searches of several stages
            neighbours = neighbours | "AllSearched" >> beam.Flatten()
        return (neighbours
                | "AsRecords" >> beam.Map(lambda kv: {"id": kv[0], "neighbours": list(kv[1])})
                | "BulkNeighbourhoods" >> BulkWrite(
                    self.conn, lambda r: around_action(r["id"], r["neighbours"], index, generation),
                    batch_size=self.batch_size, before_first=lambda client, _: ensure_around_index(client, index),
                    namespace="neighbourhoods"))
