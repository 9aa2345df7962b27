"""Checking a draft against the index a run built, with the job's own pieces and decision rule.

    checker = DraftChecker(EsConnection(url="http://127.0.0.1:9200"), alias="dedup-documents")
    result = checker.check("texto del borrador ...", title="...", doc_id=None)
    result["matches"][0]   # {"doc_id", "relation", "cosine", "jaccard", "margin", "coverage_draft", ...}

What the alias points to is read from the run document beside the index (transforms/io/run_state.py):
the run's settings rebuild its `JobConfig`, so cleaning (`clean_text`), language, units and template
paragraphs (`split_units` with the run's template keys), which units are matched (`is_matchable`),
shingles and band keys (`sign_unit`), the embedding (`SentenceTransformerHandler`, the job's model
handler), the kNN and band-key queries (`knn_query`, `band_query`), the decision (`score_pair`) and
the roll-up to a document pair (`roll_up`) are the functions the job itself runs, not copies. The
draft is one more document of the corpus: its units are searched as an incremental run searches a
new document's, and every stored unit a candidate names is scored as the job scores it (its vector
and shingles from the index; its neighbourhood as the run's own search returned it, stored beside the
index by that run (transforms/io/neighbourhood_store.py), or, where the run did not search it, from a
kNN search of its stored vector).

Template frames (a passage matched by units of >= frame_min_docs documents, transforms/text/templates.py):
the indexed ones come from the run document, and the rule is applied to the draft's own passages. Not
reproduced (documented in the README): a pair the job found only from the stored unit's side of the kNN (the
draft outside its top k) is found here only when the draft's own search or the band keys reach it; a pair
found by band keys is marked `knn` too when the draft would be among the stored unit's k nearest.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Optional

import numpy as np

from pipelines.config import JobConfig
from pipelines.stages import Job
from transforms.incremental.state import band_query, es_id_of_unit, verified_band_pairs
from transforms.io.elasticsearch import EsConnection, msearch
from transforms.io.elasticsearch_store import EsConfig, alias_target, pairs_index
from transforms.io.neighbourhood_store import read_neighbourhoods
from transforms.io.run_state import read_run_state
from transforms.matching.knn import floor_of, knn_query, read_knn_result, widen_ties
from transforms.matching.merge import overlap, score_pair
from transforms.matching.alignment import align, sequence_from_text
from transforms.matching.rollup import roll_up, with_shares
from transforms.signals.embed import SentenceTransformerHandler
from transforms.signals.lsh import shingles_from_text, sign_unit
from transforms.signals.minhash import MinHasher, shingle_overlap
from transforms.text.language import detect_language
from transforms.text.normalize import clean_text, looks_like_html
from transforms.text.units import content_hash, is_matchable, split_units

_LOG = logging.getLogger(__name__)

STORED_FIELDS = ["unit_id", "doc_id", "unit_type", "start", "end", "doc_chars", "vector", "shingles", "tokens", "title",
                 "url"]


class NotServing(RuntimeError):
    """The index cannot be served: no alias, no run document, or another model or settings."""


class DraftRejected(ValueError):
    """The draft itself cannot be checked (e.g. nothing left after cleaning); `reason` is a code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def config_from_settings(settings: dict, **overrides) -> JobConfig:
    """A run document's `settings` (JobConfig.settings()) -> the JobConfig the run had."""
    names = {f.name: f for f in dataclasses.fields(JobConfig)}
    unknown, missing = set(settings) - set(names), set(names) - set(settings)
    if unknown or missing:
        raise NotServing(f"the run document was written by another version of the job (unknown settings "
                         f"{sorted(unknown)[:5]}, missing {sorted(missing)[:5]})")
    values = {k: tuple(v) if names[k].type == "tuple[str, ...]" else v for k, v in settings.items()}
    return JobConfig(**{**values, **overrides})


@dataclasses.dataclass(frozen=True)
class IndexState:
    """What the alias points to: the physical index, its run document and the run's config."""
    physical: str
    run: dict
    job: Job
    templates: frozenset         # paragraph keys of the corpus's template text
    frames: frozenset            # unit ids of indexed template frame passages
    checked_at: float


class DraftChecker:
    """Answers "does this draft already exist in the catalogue?" against the live alias.

    conn: how to reach Elasticsearch; alias: the job's --es_index; model: the model spec this service
    loads (default: the run's); request_timeout_s: per Elasticsearch request; state_ttl_s: how often
    the alias is looked up again (a new run moves it); max_band_hits: as the job's band lookups."""

    def __init__(self, conn: EsConnection, alias: str, *, model: Optional[str] = None, request_timeout_s: float = 5.0,
                 state_ttl_s: float = 30.0, max_band_hits: int = 200, torch_threads: Optional[int] = None):
        self.conn, self.alias, self.model_spec = conn, alias, model
        self.client = conn.client().options(request_timeout=request_timeout_s, max_retries=1, retry_on_timeout=True)
        self.state_ttl_s, self.max_band_hits, self.torch_threads = state_ttl_s, max_band_hits, torch_threads
        self._state: Optional[IndexState] = None
        self._state_lock, self._encode_lock = threading.Lock(), threading.Lock()
        self._encoder = None   # (handler, model, the settings they were loaded for)
        self._local = threading.local()
        # A stored unit's k nearest neighbours depend on the index only: kept per index generation.
        self._around: dict[str, tuple] = {}
        self._around_index, self.around_cache_size = None, 200_000

    # --- the index and the model ------------------------------------------------------------------

    def state(self, force: bool = False) -> IndexState:
        """The served index (re-read when the alias moved; looked up at most every state_ttl_s)."""
        with self._state_lock:
            now = time.monotonic()
            current = self._state
            if current is not None and not force and now - current.checked_at < self.state_ttl_s:
                return current
            physical = alias_target(self.client, self.alias)
            if physical is None:
                raise NotServing(f"alias {self.alias!r} points to no index: run the job with --es_index {self.alias} first")
            run = read_run_state(self.client, physical)
            if (current is not None and current.physical == physical and run is not None
                    and (run.get("run_id"), run.get("written_at")) == (current.run.get("run_id"), current.run.get("written_at"))):
                self._state = dataclasses.replace(current, checked_at=now)
                return self._state
            # a new index, or an incremental run rewrote this one's run document (templates, frames, neighbourhoods)
            if run is None:
                raise NotServing(f"{physical} has no run document (built by an older version of the job): run the job again")
            cfg = config_from_settings(run["settings"], **({"model": self.model_spec} if self.model_spec else {}),
                                       torch_threads=self.torch_threads or 0)
            job = Job.create(cfg, EsConfig(**dataclasses.asdict(self.conn), index=self.alias))
            if job.model.get("fingerprint") != (run.get("model") or {}).get("fingerprint"):
                raise NotServing(f"{physical} was embedded with model {run['model'].get('model')} "
                                 f"(fingerprint {str(run['model'].get('fingerprint'))[:12]}); this service has "
                                 f"{job.model.get('model')} (fingerprint {str(job.model.get('fingerprint'))[:12]})")
            if job.unit_settings != run.get("unit_settings"):
                raise NotServing(f"{physical} was built with other unit settings than this service computes "
                                 f"({run.get('unit_settings')} vs {job.unit_settings})")
            self._state = IndexState(physical, run, job, frozenset(k for k, _ in run.get("templates") or []),
                                     frozenset(run.get("frames") or []), now)
            _LOG.info("serving %s (run %s, model %s, %d template keys)", physical, run.get("run_id"),
                      job.model.get("model"), len(self._state.templates))
            return self._state

    def encoder(self, cfg: JobConfig):
        """The job's model handler and loaded model for `cfg` (loaded once; again if the settings change)."""
        wanted = (cfg.model, cfg.embed_backend, cfg.embed_precision, cfg.long_texts, cfg.device)
        with self._encode_lock:
            if self._encoder is None or self._encoder[2] != wanted:
                handler = SentenceTransformerHandler(
                    cfg.model, batch_size=cfg.embed_batch_size, min_batch_size=cfg.embed_min_batch,
                    max_batch_size=cfg.embed_max_batch, device=cfg.device or None,
                    torch_threads=cfg.torch_threads or None, long_texts=cfg.long_texts,
                    precision=cfg.embed_precision, backend=cfg.embed_backend)
                self._encoder = (handler, handler.load_model(), wanted)
            return self._encoder

    def embed(self, cfg: JobConfig, texts: list[str]) -> np.ndarray:
        return self._embed(cfg, texts)[0]

    def _embed(self, cfg: JobConfig, texts: list[str]) -> tuple[np.ndarray, float, float]:
        """(vectors, ms waited for the encoder, ms encoding)."""
        started = time.monotonic()
        handler, model, _ = self.encoder(cfg)
        with self._encode_lock:  # one encode at a time: the backend uses every core already
            began = time.monotonic()
            results = handler.run_inference(texts, model)
        done = time.monotonic()
        vectors = np.stack([r.inference for r in results]) if results else np.zeros((0, 0), np.float32)
        return vectors, (began - started) * 1000, (done - began) * 1000

    def health(self) -> dict:
        """{"ok", "alias", "index", "run_id", "model", "backend", "written_at", "reason"}."""
        out = {"ok": False, "alias": self.alias}
        try:
            self.client.cluster.health(timeout="2s")
            state = self.state(force=True)
            handler, model, _ = self.encoder(state.job.cfg)
            from transforms.signals.embed import backend_label
            out.update(ok=True, index=state.physical, run_id=state.run.get("run_id"), mode=state.run.get("mode"),
                       written_at=state.run.get("written_at"), model=state.job.model.get("model"),
                       model_fingerprint=state.job.model.get("fingerprint"), backend=backend_label(model),
                       template_keys=len(state.templates))
        except NotServing as exc:
            out["reason"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            out["reason"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return out

    # --- the check ----------------------------------------------------------------------------------

    def check(self, text: str, *, title: Optional[str] = None, url: Optional[str] = None, lang: Optional[str] = None,
              doc_id: Optional[str] = None) -> dict:
        """A draft (plain text or HTML) -> {"draft": what it became, "matches": [match], "index": what was
        searched, "timing_ms"}. `doc_id`: the id the draft has (or will have) in the catalogue; that
        document's indexed version is not matched against it (a revision is not its own duplicate)."""
        started = time.monotonic()
        state = self.state()
        job, cfg = state.job, state.job.cfg
        cleaned = clean_text(text)
        if len(cleaned.strip()) < max(1, cfg.min_chars):
            raise DraftRejected("empty_after_cleaning", f"{len(cleaned)} characters left after cleaning "
                                f"(the job needs at least {max(1, cfg.min_chars)})")
        lang = lang or detect_language(cleaned)
        draft_id = doc_id or "draft:" + content_hash(cleaned)[:16]
        doc = {"id": draft_id, "text": cleaned, "title": title, "url": url, "lang": lang}
        units, _ = split_units(doc, list(cfg.units), min_chars=cfg.min_unit_chars, templates=state.templates)
        to_match = [u for u in units if is_matchable(u, list(cfg.match_units), cfg.min_passage_chars)]
        hasher = self._hasher(cfg)
        banding = cfg.banding()
        signed = [sign_unit(hasher, banding, u) for u in to_match]
        vectors, wait_ms, embed_ms = (self._embed(cfg, [u["text"] for u in signed]) if signed
                                      else (np.zeros((0, 0), np.float32), 0.0, 0.0))
        t_search = time.monotonic()
        matches, searched = self._match(state, draft_id, signed, vectors) if signed else ([], {})
        search_ms = (time.monotonic() - t_search) * 1000
        templates = sum(1 for u in units if u["template"] and u["unit_type"] == "paragraph")
        return {
            "draft": {"id": draft_id, "lang": lang, "chars": len(cleaned), "is_html": looks_like_html(text),
                      "units": len(units), "units_matched": len(signed), "template_paragraphs": templates,
                      "content_hash": content_hash(cleaned)},
            "matches": matches,
            "index": {"alias": self.alias, "index": state.physical, "run_id": state.run.get("run_id"),
                      "model": job.model.get("model")},
            "searched": searched,
            "timing_ms": {"embed": round(embed_ms, 1), "embed_wait": round(wait_ms, 1), "search": round(search_ms, 1),
                          "total": round((time.monotonic() - started) * 1000, 1)},
        }

    def _hasher(self, cfg: JobConfig) -> MinHasher:
        """This thread's MinHasher for the run's parameters (made once: ~60 ms; its token cache is not shared)."""
        params = cfg.minhash_params()
        hasher = getattr(self._local, "hasher", None)
        if hasher is None or hasher.params != params:
            hasher = self._local.hasher = MinHasher(params)
        return hasher

    def _msearch(self, index: str, bodies: list[dict]) -> list[dict]:
        return msearch(self.client, index, bodies)

    def _match(self, state: IndexState, draft_id: str, signed: list[dict], vectors: np.ndarray) -> tuple[list, dict]:
        job, cfg = state.job, state.job.cfg
        cos_t, jac_t = cfg.thresholds()
        _, jac_floor = cfg.search_floors()
        use_knn, use_minhash = "knn" in cfg.signals, "minhash" in cfg.signals
        queries = [{"id": u["unit_id"], "doc_id": draft_id, "unit_type": u["unit_type"], "vector": v}
                   for u, v in zip(signed, vectors)]
        by_id = {u["unit_id"]: (u, v) for u, v in zip(signed, vectors)}
        # 1. the draft's searches, as the job's: kNN (all k neighbours: pairs above the floor and the
        #    neighbourhood) and band keys (exact Jaccard of the stored shingles).
        candidates: dict[tuple[str, str], set] = {}
        around: dict[str, float] = {}
        with_bands = [u for u in signed if u["bands"]] if use_minhash else []
        bodies = ([knn_query(q, cfg.knn_k, cfg.knn_num_candidates, cfg.knn_exclude_same_document,
                             cfg.exact_documents) for q in queries]
                  if use_knn else [])
        bodies += [band_query(u, self.max_band_hits) for u in with_bands]
        phase = time.monotonic()
        timings = {}
        responses = self._msearch(state.physical, bodies)
        timings["draft_searches_ms"] = round((time.monotonic() - phase) * 1000, 1)
        knn_responses, band_responses = responses[:len(bodies) - len(with_bands)], responses[len(bodies) - len(with_bands):]
        knn_responses, _ = widen_ties(lambda more: self._msearch(state.physical, more), queries if use_knn else [],
                                      knn_responses, cfg.knn_k, cfg.knn_num_candidates,
                                      cfg.knn_exclude_same_document, cfg.exact_documents)
        for q, result in zip(queries if use_knn else [], knn_responses):
            neighbours, mean = read_knn_result(q["id"], result, cfg.knn_k)
            if mean is not None:
                around[q["id"]] = mean
            for other, cos in neighbours:
                if cos >= floor_of(job.min_cosine, q["unit_type"]):
                    candidates.setdefault((q["id"], other), set()).add("knn")
        for u, result in zip(with_bands, band_responses):
            pairs, _, _ = verified_band_pairs(u, result, jac_floor[u["unit_type"]])
            for p in pairs:
                other = p["doc_b"] if p["doc_a"] == u["unit_id"] else p["doc_a"]
                candidates.setdefault((u["unit_id"], other), set()).add("minhash")
        stored_ids = sorted({other for _, other in candidates})
        # 2. every stored unit a candidate names: vector, shingles, offsets; its neighbourhood.
        phase = time.monotonic()
        stored = self._stored_units(state.physical, stored_ids)
        timings["stored_units_ms"] = round((time.monotonic() - phase) * 1000, 1)
        phase = time.monotonic()
        if use_knn and stored:
            kth: dict[str, float] = {}   # the cosine a draft unit needs to be among a stored unit's k nearest
            for r, (neighbours, mean) in self._neighbourhoods(state, [stored[i] for i in stored_ids if i in stored]):
                if mean is not None:
                    around[r["unit_id"]] = mean
                kth[r["unit_id"]] = min(c for _, c in neighbours) if len(neighbours) >= cfg.knn_k else -1.0
                for other, cos in neighbours:  # the draft's own indexed version found from this side
                    if cos >= floor_of(job.min_cosine, r["unit_type"]) and (other, r["unit_id"]) in candidates:
                        candidates[(other, r["unit_id"])].add("knn")
            # The job searches from both ends: for a draft not in the index, a pair is found by kNN
            # too when the draft unit would be among the stored unit's k nearest (an indexed draft was
            # looked for among them above, as the job's search from that end saw it).
            draft_indexed = any(doc_id == draft_id for doc_id in self._indexed_docs(state.physical, [draft_id]))
            for (uid, other), methods in candidates.items():
                if "knn" not in methods and other in kth and not draft_indexed:
                    cos = float(np.dot(by_id[uid][1], stored[other]["vector"]))
                    if cos >= floor_of(job.min_cosine, stored[other]["unit_type"]) and cos >= kth[other]:
                        methods.add("knn")
        timings["neighbourhoods_ms"] = round((time.monotonic() - phase) * 1000, 1)
        (timings["neighbourhoods_cached"], timings["neighbourhoods_stored"],
         timings["neighbourhoods_searched"]) = getattr(self._local, "neighbourhoods", (0, 0, 0))
        self._local.neighbourhoods = (0, 0, 0)
        phase = time.monotonic()
        # 3. both scores, the margin and the rule for each candidate (MergeSignals' decision).
        margin_t, combined, aligned, contained = cfg.margins(), cfg.combined(), cfg.aligned(), cfg.contained()
        rules, with_alignment = cfg.rules(), cfg.uses_alignment
        kept = []
        for (uid, other), methods in sorted(candidates.items()):
            if other not in stored:
                continue
            unit, vec = by_id[uid]
            s = stored[other]
            kind = unit["unit_type"]
            if s["unit_type"] != kind or (kind != "document" and s["doc_id"] == draft_id):
                continue
            jac, containment, shared = (overlap(unit["ids"], s["ids"]) if unit["ids"].size and s["ids"].size
                                        else (None, None, None))
            mean = (around[uid] + around[other]) / 2.0 if uid in around and other in around else None
            alignment = None
            if with_alignment and kind == "document" and unit.get("tokens") is not None and s.get("tokens") is not None:
                alignment = align(unit["tokens"], sequence_from_text(s["tokens"]))
            cos, jac, margin, rule = score_pair(kind, float(np.dot(vec, s["vector"])), jac, mean,
                                                cosine_threshold=cos_t, jaccard_threshold=jac_t,
                                                rules=rules, margin_threshold=margin_t, combined=combined,
                                                alignment=alignment, aligned=aligned, containment=containment,
                                                contained=contained, shared=shared)
            if rule:
                kept.append({"unit": unit, "stored": s, "cosine": cos, "jaccard": jac, "margin": margin,
                             "aligned": alignment[0] if alignment else None,
                             "small_edits": alignment[1] if alignment else None,
                             "method": "+".join(sorted(methods)), "rule": rule})
        # 4. template frames (the job's DropFramePassages): a draft passage matching units of as many
        #    documents as the frame rule needs is a frame, and so is one the run found to be a frame when
        #    the draft is an indexed document with that passage unchanged (the job counted the matches
        #    from both ends; the draft's own search sees only its k nearest); no match of a frame is reuse.
        frames = set()
        if cfg.frame_min_docs > 0:
            partners: dict[str, set] = {}
            for m in kept:
                if m["unit"]["unit_type"] != "document":
                    partners.setdefault(m["unit"]["unit_id"], set()).add(m["stored"]["doc_id"])
            frames = {u for u, docs in partners.items() if len(docs) >= cfg.frame_min_docs}
            own = [u for u in partners if u in state.frames and u not in frames]
            if own:
                indexed = self._stored_units(state.physical, own, fields=["content_hash"])
                frames |= {u for u in own if u in indexed and indexed[u].get("content_hash") == by_id[u][0]["content_hash"]}
            kept = [m for m in kept if m["unit"]["unit_id"] not in frames and m["stored"]["unit_id"] not in state.frames]
        timings["scoring_ms"] = round((time.monotonic() - phase) * 1000, 1)
        phase = time.monotonic()
        matches = self._roll_up(state, draft_id, by_id, kept)
        timings["roll_up_ms"] = round((time.monotonic() - phase) * 1000, 1)
        return matches, {"queries": len(bodies), "candidates": len(candidates), "stored_units": len(stored),
                         "unit_matches": len(kept), "frame_passages": len(frames), **timings}

    def _neighbourhoods(self, state: IndexState, rows: list[dict]):
        """[(stored unit, (neighbours, mean cosine))]: its kNN search as the job ran it, cached per index."""
        cfg = state.job.cfg
        # kept while the index is unchanged: an incremental run writes into the same physical index
        generation = (state.physical, state.run.get("run_id"), state.run.get("written_at"),
                      (state.run.get("neighbourhoods") or {}).get("generation"))
        with self._state_lock:
            if self._around_index != generation or len(self._around) > self.around_cache_size:
                self._around, self._around_index = {}, generation
            cache = self._around
            known = {r["unit_id"]: cache[r["unit_id"]] for r in rows if r["unit_id"] in cache}
        missing = [r for r in rows if r["unit_id"] not in known]
        # What the job's own search returned, stored beside the index by the run the alias points to
        # (transforms/io/neighbourhood_store.py); only the rest are searched again.
        stored = self._stored_neighbourhoods(state, [r["unit_id"] for r in missing])
        for unit_id, found in stored.items():
            known[unit_id] = cache[unit_id] = found
        missing = [r for r in missing if r["unit_id"] not in stored]
        self._local.neighbourhoods = (len(known) - len(stored), len(stored), len(missing))
        recs = [{"id": r["unit_id"], "doc_id": r["doc_id"], "unit_type": r["unit_type"], "vector": r["vector"]}
                for r in missing]
        search = (cfg.knn_k, cfg.knn_num_candidates, cfg.knn_exclude_same_document, cfg.exact_documents)
        responses, _ = widen_ties(lambda bodies: self._msearch(state.physical, bodies), recs,
                                  self._msearch(state.physical, [knn_query(q, *search) for q in recs]), *search)
        for r, result in zip(missing, responses):
            known[r["unit_id"]] = cache[r["unit_id"]] = read_knn_result(r["unit_id"], result, cfg.knn_k)
        return [(r, known[r["unit_id"]]) for r in rows]

    def _stored_neighbourhoods(self, state: IndexState, unit_ids: list[str]) -> dict:
        """{unit id: (neighbours, mean)} stored by the served run (none: an index of an older version)."""
        generation = (state.run.get("neighbourhoods") or {}).get("generation")
        if not unit_ids or not generation:
            return {}
        from elasticsearch import NotFoundError

        try:
            return read_neighbourhoods(self.client, state.physical, unit_ids, generation)
        except NotFoundError:
            return {}

    def _indexed_docs(self, physical: str, doc_ids: list[str]) -> list[str]:
        """Those of `doc_ids` whose document unit is in the index."""
        found = self.client.mget(index=physical, ids=[es_id_of_unit(d) for d in doc_ids], source=False)
        return [d for d, doc in zip(doc_ids, found["docs"]) if doc.get("found")]

    def _stored_units(self, physical: str, unit_ids: list[str], fields=None) -> dict:
        """{unit id: the indexed unit} (vector as float32, shingle ids decoded) for those in the index."""
        if not unit_ids:
            return {}
        response = self.client.mget(index=physical, ids=[es_id_of_unit(u) for u in unit_ids],
                                    source_includes=fields or STORED_FIELDS)
        out = {}
        for unit_id, doc in zip(unit_ids, response["docs"]):
            if doc.get("found"):
                src = doc["_source"]
                out[unit_id] = {**src, "unit_id": unit_id}
                if "vector" in src:
                    out[unit_id]["vector"] = np.asarray(src["vector"], dtype=np.float32)
                if fields is None:
                    out[unit_id]["ids"] = (shingles_from_text(src["shingles"]) if src.get("shingles")
                                           else np.zeros(0, np.uint64))
        return out

    def _roll_up(self, state: IndexState, draft_id: str, by_id: dict, kept: list[dict]) -> list[dict]:
        """Unit matches -> one match per stored document, as the job's RollUp orients and scores them."""
        cfg = state.job.cfg
        by_doc: dict[str, list] = {}
        for m in kept:
            by_doc.setdefault(m["stored"]["doc_id"], []).append(m)
        if not by_doc:
            return []
        # document units (scores, title, url): those already fetched as candidates, the others now
        known = {m["stored"]["unit_id"]: m["stored"] for m in kept if m["stored"]["unit_type"] == "document"}
        docs = {**known, **self._stored_units(state.physical, sorted(set(by_doc) - set(known)))}
        draft_doc = by_id.get(draft_id)
        groups = self._groups(state.physical, sorted(by_doc))
        out = []
        for other, found in sorted(by_doc.items()):
            draft_first = draft_id < other
            doc_a, doc_b = (draft_id, other) if draft_first else (other, draft_id)
            rows, chars = [], {}
            for m in found:
                u, s = m["unit"], m["stored"]
                a, b = (u, s) if draft_first else (s, u)
                chars = {doc_a: a["doc_chars"], doc_b: b["doc_chars"]}
                rows.append({"unit_a": a["unit_id"], "unit_b": b["unit_id"], "unit_type": u["unit_type"],
                             "a_start": a["start"], "a_end": a["end"], "b_start": b["start"], "b_end": b["end"],
                             "cosine": m["cosine"], "jaccard": m["jaccard"], "margin": m["margin"],
                             "aligned": m["aligned"], "small_edits": m["small_edits"],
                             "method": m["method"], "rule": m["rule"]})
            row = roll_up(doc_a, doc_b, rows, chars, cfg.duplicate_coverage)
            stored_doc = docs.get(other)
            cos = jac = None
            if draft_doc is not None and stored_doc is not None:
                cos = round(float(np.dot(draft_doc[1], stored_doc["vector"])), 6)
                if draft_doc[0]["ids"].size and stored_doc["ids"].size:
                    a_ids, b_ids = ((draft_doc[0]["ids"], stored_doc["ids"]) if draft_first
                                    else (stored_doc["ids"], draft_doc[0]["ids"]))
                    jac, share_a, share_b = shingle_overlap(a_ids, b_ids)
                    jac = round(float(jac), 6)
                    row = with_shares(row, (share_a, share_b), cfg.duplicate_coverage)
            side_d, side_o = ("a", "b") if draft_first else ("b", "a")
            out.append({
                "doc_id": other, "title": (stored_doc or {}).get("title"), "url": (stored_doc or {}).get("url"),
                "relation": row["relation"], "granularity": row["granularity"], "cosine": cos, "jaccard": jac,
                "margin": row["margin"], "aligned": row["aligned"], "small_edits": row["small_edits"],
                "method": row["method"], "rule": row["rule"], "matched_units": row["matched_units"], "coverage_draft": row[f"coverage_{side_d}"],
                "coverage_document": row[f"coverage_{side_o}"],
                "passages": [{"unit_type": r["unit_type"], "draft_unit": r[f"unit_{side_d}"], "document_unit": r[f"unit_{side_o}"],
                              "draft_start": r[f"{side_d}_start"], "draft_end": r[f"{side_d}_end"],
                              "document_start": r[f"{side_o}_start"], "document_end": r[f"{side_o}_end"],
                              "cosine": r["cosine"], "jaccard": r["jaccard"], "margin": r["margin"], "rule": r["rule"]}
                             for r in sorted(rows, key=lambda r: (r["unit_type"] != "document", -(r["cosine"] or 0) - (r["jaccard"] or 0),
                                                                  r["unit_a"], r["unit_b"]))],
                **groups.get(other, {"group_id": None, "canonical_id": None}),
            })
        order = {"duplicate": 0, "passage": 1}
        out.sort(key=lambda m: (order[m["relation"]], -(m["cosine"] or 0) - (m["jaccard"] or 0), m["doc_id"]))
        return out

    def _groups(self, physical: str, doc_ids: list[str]) -> dict:
        """{doc_id: {"group_id", "canonical_id"}} from the catalogue's current pairs (duplicates only)."""
        index = pairs_index(physical)
        try:
            found = self.client.search(index=index, size=10_000, query={"bool": {"should": [
                {"terms": {"doc_a": doc_ids}}, {"terms": {"doc_b": doc_ids}}]}},
                source=["row.doc_a", "row.doc_b", "row.relation", "row.group_id", "row.canonical_id"])
        except Exception:  # noqa: BLE001 - no pairs index (no duplicates yet): no groups
            return {}
        out = {}
        for hit in found["hits"]["hits"]:
            row = hit["_source"].get("row") or {}
            if row.get("relation") == "duplicate" and row.get("group_id"):
                for d in (row.get("doc_a"), row.get("doc_b")):
                    if d in doc_ids:
                        out[d] = {"group_id": row["group_id"], "canonical_id": row.get("canonical_id")}
        return out

    def document_duplicates(self, doc_id: str, limit: int = 100) -> dict:
        """The catalogue's current pairs naming `doc_id` and its group: {"doc_id", "indexed", "pairs", "group"}."""
        state = self.state()
        indexed = self.client.exists(index=state.physical, id=es_id_of_unit(doc_id))
        pairs = []
        try:
            found = self.client.search(index=pairs_index(state.physical), size=limit, query={"bool": {"should": [
                {"term": {"doc_a": doc_id}}, {"term": {"doc_b": doc_id}}]}}, source=["row"], sort=["_doc"])
            pairs = [h["_source"]["row"] for h in found["hits"]["hits"]]
        except Exception as exc:  # noqa: BLE001
            if "index_not_found" not in str(exc):
                raise
        pairs.sort(key=lambda r: (r.get("relation") != "duplicate", r.get("doc_a"), r.get("doc_b")))
        group = next(({"group_id": r["group_id"], "canonical_id": r.get("canonical_id")} for r in pairs
                      if r.get("relation") == "duplicate" and r.get("group_id")), None)
        return {"doc_id": doc_id, "indexed": bool(indexed), "pairs": pairs, "group": group,
                "index": state.physical, "run_id": state.run.get("run_id")}
