"""The draft-check HTTP service: FastAPI over `DraftChecker` (service/checker.py).

    python -m service --es_url http://127.0.0.1:9200 --es_index dedup-documents --port 8000
    curl -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
         -d '{"text": "..."}' http://127.0.0.1:8000/v1/check

Endpoints: `POST /v1/check` (a draft as JSON {"text", "title", "url", "lang", "id"}, or the raw text
as text/plain or text/html with the other fields as query parameters), `GET /v1/documents/{id}/duplicates`,
`GET /healthz` (no key needed: reachability, model, which run the alias points to; 503 when not
serving), `GET /docs` and `/openapi.json`.

Manners: API keys (NEAR_DUP_API_KEYS, comma-separated, or a Secret Manager version holding them one
per line) as `Authorization: Bearer KEY` or `X-API-Key: KEY`, compared in constant time; a body
limit (413), a draft length limit, content types (415), UTF-8 and binary checks, JSON and field
validation: a 4xx with {"error": code, "detail": reason}, never a 500 on bad input; Elasticsearch
requests with a timeout (503 when it is down or slow); one JSON log line per request without the
draft's text or any key (a key is named by the first 8 hex of its sha256).
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.checker import DraftChecker, DraftRejected, NotServing
from service.config import ServiceConfig

_LOG = logging.getLogger("near_dup.service")


class Draft(BaseModel):
    """A draft to check (JSON body of POST /v1/check)."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(min_length=1, description="The draft: plain text or HTML (cleaned as the job cleans pages)")
    title: Optional[str] = Field(None, max_length=1000)
    url: Optional[str] = Field(None, max_length=4096)
    lang: Optional[str] = Field(None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$",
                                description="ISO 639 code; detected as the job detects it when absent")
    id: Optional[str] = Field(None, min_length=1, max_length=512,
                              description="The draft's id in the catalogue, if it has one: its indexed version "
                                          "is not reported as its own duplicate")


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: Optional[dict] = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def key_name(key: str) -> str:
    """How a key appears in logs: the first 8 hex of its sha256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def matching_key(presented: Optional[str], keys: tuple[str, ...]) -> Optional[str]:
    """The configured key equal to `presented` (compared in constant time with every key), or None."""
    if not presented:
        return None
    found = None
    for key in keys:  # no early exit: the time does not tell which key nearly matched
        if hmac.compare_digest(presented.encode("utf-8"), key.encode("utf-8")):
            found = key
    return found


def _binary(text: str) -> bool:
    """NUL or many control characters: not a text draft."""
    if "\x00" in text:
        return True
    sample = text[:20000]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    return controls > max(8, len(sample) // 100)


def create_app(config: ServiceConfig, checker: Optional[DraftChecker] = None) -> FastAPI:
    """The FastAPI app; `checker` defaults to one built from `config` (its model loads at start-up)."""
    keys = config.api_keys()
    checker = checker or DraftChecker(config.es_connection(), config.es_index, model=config.model,
                                      request_timeout_s=config.es_timeout_s, torch_threads=config.torch_threads or None)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        health = await run_in_threadpool(checker.health)   # the model loads here, not in the first request
        _log("startup", ok=health["ok"], index=health.get("index"), run_id=health.get("run_id"),
             model=health.get("model"), backend=health.get("backend"), reason=health.get("reason"))
        yield

    app = FastAPI(title="Near-duplicate draft check", version="1",
                  description="Does this draft already exist in the catalogue, and where? The same cleaning, "
                              "template handling, units, model, shingles and decision rule as the batch job, "
                              "against the index its last run built (the live alias).", lifespan=lifespan)
    app.state.checker = checker

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        started, request_id = time.monotonic(), request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.log = {}
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - logged without the body; the client gets a bare 500
            _log("request", level=logging.ERROR, request_id=request_id, method=request.method, path=request.url.path,
                 status=500, ms=round((time.monotonic() - started) * 1000, 1), exception=type(exc).__name__,
                 **request.state.log)
            return JSONResponse({"error": "internal", "detail": "internal error (logged)", "request_id": request_id},
                                status_code=500)
        response.headers["x-request-id"] = request_id
        _log("request", request_id=request_id, method=request.method, path=request.url.path,
             status=response.status_code, ms=round((time.monotonic() - started) * 1000, 1), **request.state.log)
        return response

    def authenticate(request: Request) -> None:
        auth = request.headers.get("authorization") or ""
        presented = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
        if not presented:
            raise ApiError(401, "unauthenticated", "an API key is required (Authorization: Bearer KEY or X-API-Key)",
                           {"WWW-Authenticate": "Bearer"})
        key = matching_key(presented, keys)
        if key is None:
            request.state.log["key"] = "invalid"
            raise ApiError(401, "unauthenticated", "the API key is not valid", {"WWW-Authenticate": "Bearer"})
        request.state.log["key"] = key_name(key)

    async def read_draft(request: Request) -> Draft:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_body_bytes):
            raise ApiError(413, "too_large", f"the body is larger than {config.max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():  # a body without Content-Length is cut off at the limit too
            body += chunk
            if len(body) > config.max_body_bytes:
                raise ApiError(413, "too_large", f"the body is larger than {config.max_body_bytes} bytes")
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "text/plain", "text/html"):
            raise ApiError(415, "unsupported_media_type", f"Content-Type {ctype or '(none)'} is not accepted: "
                           "send application/json, text/plain or text/html")
        try:
            raw = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "not_utf8", f"the body is not UTF-8 text (byte {exc.start})") from None
        if ctype == "application/json":
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                               f"column {exc.colno}") from None
            if not isinstance(data, dict):
                raise ApiError(422, "invalid_draft", "the JSON body must be an object with a \"text\" field")
        else:
            extra = set(request.query_params) - {"title", "url", "lang", "id"}
            if extra:
                raise ApiError(422, "invalid_draft", f"unknown query parameters: {', '.join(sorted(extra))}")
            data = {"text": raw, **dict(request.query_params)}
        try:
            draft = Draft.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "body"
            raise ApiError(422, "invalid_draft", f"{where}: {first.get('msg')}") from None
        if len(draft.text) > config.max_draft_chars:
            raise ApiError(413, "too_large", f"the draft has {len(draft.text)} characters; at most "
                           f"{config.max_draft_chars} are checked")
        if _binary(draft.text):
            raise ApiError(422, "binary_content", "the draft contains NUL or control characters: send text or HTML")
        if not draft.text.strip():
            raise ApiError(422, "empty_draft", "the draft is empty")
        return draft

    def not_serving(exc: Exception) -> ApiError:
        from elasticsearch import ApiError as EsApiError, ConnectionError as EsConnectionError, ConnectionTimeout

        if isinstance(exc, NotServing):
            return ApiError(503, "not_serving", str(exc))
        if isinstance(exc, (ConnectionTimeout, EsConnectionError)):
            return ApiError(503, "index_unavailable", f"Elasticsearch did not answer ({type(exc).__name__})")
        if isinstance(exc, EsApiError):
            return ApiError(503, "index_unavailable", f"Elasticsearch refused the request ({exc.meta.status})")
        raise exc

    @app.post("/v1/check", summary="Check a draft against the catalogue", openapi_extra={"requestBody": {
        "required": True, "content": {
            "application/json": {"schema": Draft.model_json_schema()},
            "text/plain": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}}})
    async def check(request: Request):
        """The documents the draft duplicates (relation `duplicate`: the draft as a whole) or reuses passages
        of (relation `passage`), with cosine, Jaccard, margin, coverage of both and the matched passages'
        offsets in the draft and in the document, and the document's group and canonical document."""
        authenticate(request)
        draft = await read_draft(request)
        request.state.log["draft_chars"] = len(draft.text)
        try:
            result = await run_in_threadpool(checker.check, draft.text, title=draft.title, url=draft.url,
                                             lang=draft.lang, doc_id=draft.id)
        except DraftRejected as exc:
            raise ApiError(422, exc.reason, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - Elasticsearch down or index not servable: 503
            raise not_serving(exc) from None
        request.state.log.update(matches=len(result["matches"]), embed_ms=result["timing_ms"]["embed"],
                                 search_ms=result["timing_ms"]["search"])
        return result

    @app.get("/v1/documents/{doc_id:path}/duplicates", summary="The duplicates and group of an indexed document")
    async def document_duplicates(doc_id: str, request: Request):
        authenticate(request)
        if not doc_id or len(doc_id) > 512:
            raise ApiError(422, "invalid_id", "a document id has 1 to 512 characters")
        try:
            result = await run_in_threadpool(checker.document_duplicates, doc_id)
        except Exception as exc:  # noqa: BLE001
            raise not_serving(exc) from None
        if not result["indexed"] and not result["pairs"]:
            raise ApiError(404, "not_found", f"document {doc_id!r} is not in {result['index']}")
        return result

    @app.get("/healthz", summary="Index reachable, model loaded, which run and model the alias points to")
    async def healthz():
        health = await run_in_threadpool(checker.health)
        return JSONResponse(health, status_code=200 if health["ok"] else 503)

    return app


def _log(event: str, level: int = logging.INFO, **fields) -> None:
    _LOG.log(level, json.dumps({"event": event, **{k: v for k, v in fields.items() if v is not None}},
                               ensure_ascii=False, default=str))
