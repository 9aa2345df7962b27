"""One frozen, typed job configuration, built once from the command line's options.

Every option of `DedupOptions` is a field here (a test checks it), so nothing the user sets can be
left out of what depends on it:

- the run id hashes every field that can change an output row (all fields but `OPERATIONAL`);
- `summary.json` records every field under "settings" (secrets are only ever names of where to find
  them: env var names and Secret Manager versions);
- the per-unit index settings (what decides whether an indexed unit can be reused by an incremental
  run) come from `unit_settings()` below.

Stages take the parts they need: `source_config()`, `minhash_params()`, `thresholds()`, `es_config()`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Optional

from transforms.io.elasticsearch_store import EsConfig
from transforms.io.ingest import FieldMap, SourceConfig
from transforms.matching.rules import Rule
from transforms.records import ConfigError
from transforms.signals.lsh import choose_bands
from transforms.signals.minhash import MinHashParams
from transforms.text.units import UNIT_TYPES

# Fields that cannot change any output row: where things go, how fast, how to reach a service, how
# often to report. Everything else is part of the run id.
OPERATIONAL = frozenset({
    "output", "output_formats", "rows_per_file", "report_top", "bq_output_dataset", "run_date", "run_id",
    "progress_interval", "torch_threads", "device", "es_url", "es_cloud_id", "es_api_key_env",
    "es_api_key_secret", "es_password_secret", "es_username", "es_password_env", "es_ca_certs",
    "es_verify_certs", "es_batch_size", "es_merge_segments", "es_merge_timeout_s", "recreate_index", "mode", "on_deleted",
    "lease_ttl", "wait_for_lease",
})


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])) if "@" in parts.netloc else url


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in str(text).split(",") if x.strip())


@dataclass(frozen=True)
class JobConfig:
    """The job's settings (field names = option names without `--`; lists are tuples)."""
    # input and output
    input: Optional[str]
    input_format: str
    bq_table: str
    bq_query: str
    output: str
    output_formats: tuple[str, ...]
    rows_per_file: int
    report_top: int
    bq_output_dataset: str
    run_date: str
    id_field: str
    text_field: str
    title_field: str
    url_field: str
    lang_field: str
    published_at_field: str
    extra_fields: tuple[str, ...]
    max_chars: int
    units: tuple[str, ...]
    match_units: tuple[str, ...]
    unit_cosine_threshold: float
    unit_jaccard_threshold: float
    min_unit_chars: int
    template_min_docs: int
    template_min_share: float
    frame_min_docs: int
    min_passage_chars: int
    min_chars: int
    run_id: str
    progress_interval: float
    # embedding
    model: str
    embed_batch_size: int
    embed_backend: str
    embed_precision: str
    embed_distinct_texts: bool
    embed_min_batch: int
    embed_max_batch: int
    long_texts: str
    torch_threads: int
    device: str
    # elasticsearch
    vector_store: str
    es_url: str
    es_cloud_id: str
    es_index: str
    es_index_options: str
    es_api_key_env: str
    es_api_key_secret: str
    es_password_secret: str
    es_username: str
    es_password_env: str
    es_ca_certs: str
    es_verify_certs: bool
    es_batch_size: int
    recreate_index: bool
    es_merge_segments: int
    es_merge_timeout_s: float
    mode: str
    lease_ttl: float
    wait_for_lease: float
    on_deleted: str
    # duplicate search
    cosine_threshold: float
    cosine_margin: float
    unit_cosine_margin: float
    combined_jaccard: float
    combined_cosine: float
    aligned_threshold: float
    aligned_small_edits: float
    aligned_cosine: float
    containment_threshold: float
    containment_cosine: float
    containment_min_shingles: int
    common_source_cosine: float
    knn_k: int
    knn_num_candidates: int
    knn_exclude_same_document: bool
    document_search: str
    rule: str
    unit_rule: str
    duplicate_coverage: float
    signals: tuple[str, ...]
    # groups
    canonical_policy: tuple[str, ...]
    preferred_url: str
    group_rounds: int
    # minhash lsh
    jaccard_threshold: float
    num_perm: int
    minhash_seed: int
    shingle_kind: str
    shingle_n: int
    remove_accents: bool
    lsh_target_recall: float
    lsh_max_bucket: int
    lsh_window: int
    lsh_prefilter_margin: float

    @classmethod
    def from_options(cls, opts) -> "JobConfig":
        """From a validated `DedupOptions` view (comma lists become tuples, match units in unit order)."""
        values = {}
        for f in fields(cls):
            value = getattr(opts, f.name)
            if f.name == "match_units":
                wanted = set(_split(value))
                value = tuple(u for u in UNIT_TYPES if u in wanted)
            elif f.type == "tuple[str, ...]":
                value = _split(value)
            values[f.name] = value
        return cls(**values)

    def replace(self, **changes) -> "JobConfig":
        return dataclasses.replace(self, **changes)

    # --- what stages read -------------------------------------------------------------------------

    def settings(self) -> dict:
        """Every field, JSON-ready (summary.json "settings"); a user:password in --es_url is masked."""
        out = {f.name: list(v) if isinstance(v, tuple) else v for f in fields(self) for v in [getattr(self, f.name)]}
        out["es_url"] = _mask_url(self.es_url)
        return out

    def result_key(self) -> str:
        """Canonical JSON of the fields that can change an output row."""
        return json.dumps({k: v for k, v in self.settings().items() if k not in OPERATIONAL}, sort_keys=True)

    def default_run_id(self) -> str:
        """Deterministic run id: the same input and settings give the same id (and identical rows)."""
        return hashlib.sha1(self.result_key().encode()).hexdigest()[:12]

    @property
    def effective_run_id(self) -> str:
        return self.run_id or self.default_run_id()

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    @property
    def exact_documents(self) -> bool:
        """Documents search their neighbours exactly (`--document_search exact`; knn.knn_query)."""
        return self.document_search == "exact"

    def thresholds(self) -> tuple[dict, dict]:
        """({unit_type: cosine threshold}, {unit_type: jaccard threshold})."""
        cos = {t: self.cosine_threshold if t == "document" else self.unit_cosine_threshold for t in UNIT_TYPES}
        jac = {t: self.jaccard_threshold if t == "document" else self.unit_jaccard_threshold for t in UNIT_TYPES}
        return cos, jac

    def margins(self) -> dict:
        """{unit_type: margin a cosine-alone decision needs} of the matched unit types."""
        return {t: self.cosine_margin if t == "document" else self.unit_cosine_margin for t in self.match_units}

    def combined(self) -> dict:
        """{unit_type: (jaccard, cosine)} of the combined clause (documents only; {} when off)."""
        if self.combined_jaccard > 0 and self.combined_cosine > 0:
            return {"document": (self.combined_jaccard, self.combined_cosine)}
        return {}

    def aligned(self) -> dict:
        """{unit_type: (aligned, small_edits, cosine)} of the alignment clause (documents only; {}
        when off). A --rule replaces it, as it replaces every clause, but keeps its search floor."""
        if not (self.aligned_threshold > 0 and self.aligned_cosine > 0) or "document" not in self.match_units:
            return {}
        return {"document": (self.aligned_threshold, self.aligned_small_edits, self.aligned_cosine)}

    def contained(self) -> dict:
        """{unit_type: (containment, cosine, shared shingles)} of the containment clause (passage reuse of two
        documents; {} when off or documents are not matched). A --rule replaces it."""
        if not (self.containment_threshold > 0 and self.containment_cosine > 0) or "document" not in self.match_units:
            return {}
        return {"document": (self.containment_threshold, self.containment_cosine, self.containment_min_shingles)}

    @property
    def uses_alignment(self) -> bool:
        """Whether document pairs need their word-sequence alignment (the clause, or a rule naming it)."""
        if self.rule:
            return "document" in self.match_units and bool(self.rules()["document"].names & {"aligned", "small_edits"})
        return bool(self.aligned())

    def search_floors(self) -> tuple[dict, dict]:
        """({unit_type: lowest cosine}, {unit_type: lowest Jaccard}) a decision can accept: the floors
        the kNN and LSH searches keep candidates above (a custom --rule is decided over these)."""
        cos, jac = self.thresholds()
        for kind, (c_jac, c_cos) in self.combined().items():
            cos[kind], jac[kind] = min(cos[kind], c_cos), min(jac[kind], c_jac)
        for kind, (_, _, a_cos) in self.aligned().items():
            cos[kind] = min(cos[kind], a_cos)
        for kind, (_, c_cos, _) in self.contained().items():
            cos[kind] = min(cos[kind], c_cos)
        return cos, jac

    def rules(self) -> dict:
        """{unit_type: Rule} for the types given a rule expression."""
        out = {}
        try:
            if self.rule:
                out["document"] = Rule(self.rule)
            if self.unit_rule:
                out["paragraph"] = out["sentence"] = Rule(self.unit_rule)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return out

    def minhash_params(self) -> MinHashParams:
        return MinHashParams(num_perm=self.num_perm, seed=self.minhash_seed, shingle_kind=self.shingle_kind,
                             shingle_n=self.shingle_n, remove_accents=self.remove_accents)

    def banding(self) -> dict:
        """{unit_type: (bands, rows)} of the LSH for each matched unit type."""
        _, jac_t = self.search_floors()
        return {kind: choose_bands(jac_t[kind], self.num_perm, self.lsh_target_recall) for kind in self.match_units}

    def source_config(self) -> SourceConfig:
        field_map = FieldMap(id=self.id_field, text=self.text_field, title=self.title_field, url=self.url_field,
                             lang=self.lang_field, published_at=self.published_at_field, extra=self.extra_fields)
        return SourceConfig(pattern=self.input or "", fmt=self.input_format, bq_table=self.bq_table,
                            bq_query=self.bq_query, fields=field_map, max_chars=self.max_chars)

    def es_config(self) -> EsConfig:
        try:
            return EsConfig(url=self.es_url, index=self.es_index, model=self.model,
                            index_options=self.es_index_options, cloud_id=self.es_cloud_id or None,
                            api_key_env=self.es_api_key_env or None, api_key_secret=self.es_api_key_secret or None,
                            username=self.es_username or None, password_env=self.es_password_env or None,
                            password_secret=self.es_password_secret or None, ca_certs=self.es_ca_certs or None,
                            verify_certs=self.es_verify_certs)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
