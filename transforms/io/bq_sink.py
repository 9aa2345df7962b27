"""The run's tables in BigQuery: duplicates, groups and unit_matches, loaded with FILE_LOADS into
day-partitioned tables (partition column `run_date`, clustered by `run_id`).

Idempotent per run: before the job starts, `delete_run_rows` removes every row of this run_id from
the tables (a DML DELETE that touches only the run's partition), then the job appends; re-running
a run replaces its rows and leaves other runs alone.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

TABLES = ("duplicates", "groups", "unit_matches")


def bq_schema(schema: pa.Schema) -> dict:
    """pyarrow schema (+ run_date) -> BigQuery JSON schema."""
    def field(f: pa.Field) -> dict:
        t = f.type
        if pa.types.is_list(t):
            return {"name": f.name, "type": field(pa.field(f.name, t.value_type))["type"], "mode": "REPEATED"}
        kind = ("STRING" if pa.types.is_string(t) else "FLOAT" if pa.types.is_floating(t)
                else "INTEGER" if pa.types.is_integer(t) else "BOOLEAN" if pa.types.is_boolean(t) else None)
        if kind is None:
            raise ValueError(f"no BigQuery type for {f.name}: {t}")
        return {"name": f.name, "type": kind, "mode": "NULLABLE" if f.nullable else "REQUIRED"}

    fields = [field(f) for f in schema]
    if not any(f["name"] == "run_id" for f in fields):
        fields.append({"name": "run_id", "type": "STRING", "mode": "NULLABLE"})
    fields.append({"name": "run_date", "type": "DATE", "mode": "REQUIRED"})
    return {"fields": fields}


def split_dataset(dataset: str) -> tuple[str, str]:
    """'project:dataset' or 'project.dataset' -> (project, dataset)."""
    for sep in (":", "."):
        if sep in dataset:
            project, name = dataset.split(sep, 1)
            return project, name
    raise ValueError(f"BigQuery dataset must be project:dataset, got {dataset!r}")


def delete_run_rows(dataset: str, run_id: str, tables=TABLES) -> dict:
    """Deletes this run's rows from the run tables that exist; returns {table: rows deleted}."""
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    project, name = split_dataset(dataset)
    client = bigquery.Client(project=project)
    deleted = {}
    for table in tables:
        try:
            client.get_table(f"{project}.{name}.{table}")
        except NotFound:
            continue
        job = client.query(f"DELETE FROM `{project}.{name}.{table}` WHERE run_id = @run_id",
                           job_config=bigquery.QueryJobConfig(query_parameters=[
                               bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]))
        job.result()
        deleted[table] = job.num_dml_affected_rows or 0
    return deleted


class WriteRunTable(beam.PTransform):
    """Row dicts -> `<dataset>.<table>` via FILE_LOADS, appended with `run_date` to a day-partitioned
    table; `replace`: the table is replaced as a whole instead (WRITE_TRUNCATE, one load job, so readers
    see the previous or the new table, never a mix: the current-state tables)."""

    def __init__(self, dataset: str, table: str, schema: pa.Schema, run_date: str, replace: bool = False):
        super().__init__()
        self.dataset, self.table, self.schema, self.run_date = dataset, table, schema, run_date
        self.replace = replace

    def expand(self, rows):
        project, name = split_dataset(self.dataset)
        names = [f["name"] for f in bq_schema(self.schema)["fields"]]
        run_date = self.run_date
        return (rows
                | "Project" >> beam.Map(lambda r: {n: (run_date if n == "run_date" else r.get(n)) for n in names})
                | "Load" >> beam.io.WriteToBigQuery(
                    f"{project}:{name}.{self.table}", schema=bq_schema(self.schema),
                    method=beam.io.WriteToBigQuery.Method.FILE_LOADS,
                    create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
                    write_disposition=(beam.io.BigQueryDisposition.WRITE_TRUNCATE if self.replace
                                       else beam.io.BigQueryDisposition.WRITE_APPEND),
                    additional_bq_parameters={} if self.replace else {
                        "timePartitioning": {"type": "DAY", "field": "run_date"}, "clustering": {"fields": ["run_id"]}}))

