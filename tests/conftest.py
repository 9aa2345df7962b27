"""Session fixtures: the live local services, GCP client patches, and the loopback-only guard.

Services are started by the project's own scripts (scripts/services/*.sh), which reuse running ones.
Every test runs under a socket guard: a connection to any non-loopback address is refused and fails
the test, so nothing here can quietly reach the internet.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "scripts" / "services"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "test-project")

# --- loopback-only guard ----------------------------------------------------------------------
_BLOCKED: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def _guarded(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            _BLOCKED.append(repr(address))
            raise ConnectionRefusedError(f"test guard: connection to non-loopback address {address!r} refused")
        return real(self, address)
    return connect


socket.socket.connect = _guarded(_real_connect)
socket.socket.connect_ex = _guarded(_real_connect_ex)


REAL_GCP = os.environ.get("DEDUP_REAL_GCP_PROJECT")  # opt-in only: tests marked real_gcp may leave loopback


@pytest.fixture(autouse=True)
def loopback_only(request):
    """Fails any test during which something tried to connect outside the machine. Only tests marked
    `real_gcp`, and only when DEDUP_REAL_GCP_PROJECT is set (never in CI), may reach Google Cloud."""
    if REAL_GCP and request.node.get_closest_marker("real_gcp"):
        socket.socket.connect, socket.socket.connect_ex = _real_connect, _real_connect_ex
        yield
        socket.socket.connect, socket.socket.connect_ex = _guarded(_real_connect), _guarded(_real_connect_ex)
        return
    before = len(_BLOCKED)
    yield
    attempts = _BLOCKED[before:]
    assert not attempts, f"non-loopback connections attempted: {attempts}"


# --- services -----------------------------------------------------------------------------------
def _service(script: str, *args: str) -> str:
    result = subprocess.run(["bash", str(SERVICES / script), *args], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


@pytest.fixture(scope="session")
def es_url() -> str:
    """URL of the live Elasticsearch (started or reused by scripts/services/elasticsearch.sh)."""
    _service("elasticsearch.sh", "start")
    return _service("elasticsearch.sh", "url")


@pytest.fixture(scope="session")
def gcs_url() -> str:
    """URL of the live GCS emulator; STORAGE_EMULATOR_HOST points at it for the whole session."""
    _service("gcs.sh", "start")
    url = _service("gcs.sh", "url")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    return url


@pytest.fixture(scope="session")
def bq_endpoints(gcs_url) -> dict:
    """REST URL and gRPC address of the live BigQuery emulator."""
    _service("bigquery.sh", "start")
    return {"rest": _service("bigquery.sh", "url"), "grpc": _service("bigquery.sh", "grpc")}


@pytest.fixture()
def es_client(es_url):
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture()
def es_index(es_client) -> str:
    """A fresh index name, deleted after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    es_client.indices.delete(index=f"{name}*", ignore_unavailable=True)


@pytest.fixture()
def gcp_anonymous(monkeypatch):
    """Google clients get anonymous credentials and a project id: no metadata server, no token calls."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "test-project"))
    return "test-project"


@pytest.fixture()
def gcs_bucket(gcs_url, gcp_anonymous) -> str:
    """A fresh bucket in the GCS emulator; returns its gs:// URL."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test-project", credentials=AnonymousCredentials())
    name = f"test-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return f"gs://{name}"


@pytest.fixture()
def bigquery_emulator(bq_endpoints, gcs_url, gcp_anonymous, monkeypatch):
    """Points Beam's BigQuery IO and the BigQuery clients at the emulator (test-only patches:
    Beam offers no endpoint option). Returns a google.cloud.bigquery.Client for setting up data."""
    import grpc
    from apache_beam.io.gcp.internal.clients.bigquery import bigquery_v2_client
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, bigquery_storage_v1
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    rest = bq_endpoints["rest"]
    monkeypatch.setattr(bigquery_v2_client.BigqueryV2, "BASE_URL", f"{rest}/bigquery/v2/")
    real_read_client = bigquery_storage_v1.BigQueryReadClient

    def read_client(*args, **kwargs):
        channel = grpc.insecure_channel(bq_endpoints["grpc"])
        return real_read_client(transport=BigQueryReadGrpcTransport(channel=channel))

    monkeypatch.setattr(bigquery_storage_v1, "BigQueryReadClient", read_client)
    return bigquery.Client(project="test-project", credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=rest))


@pytest.fixture()
def blocked_connections():
    """The guard's record of refused connections (a test that provokes one must remove it)."""
    return _BLOCKED


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of Elasticsearch that injects faults into `_bulk` calls.

    `fail(status, times)`: answer the next `times` bulk requests with `status` (e.g. 429, 503)
    without forwarding them; `drop_after_forward(times)`: forward the next `times` bulk requests to
    Elasticsearch (so they are applied) and then close the connection without an answer, as a
    worker or network failure after a partial write would; `delay_after_forward(seconds, times)`: forward
    the next `times` bulk requests and answer them `seconds` late (a slow cluster). `forwarded` counts
    the bulk requests that reached Elasticsearch; `require_basic_auth(user, password)`: answer every
    request without those credentials 401, as a secured cluster does. Everything else is forwarded
    unchanged.
    """

    def __init__(self, target: str):
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        self.target = urlparse(target)
        self.plan: list[tuple[str, int]] = []
        self.bulk_requests = 0
        self.injected = 0
        self.forwarded = 0
        self.auth: str | None = None
        self.refused = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.auth is not None and self.headers.get("Authorization") != proxy.auth:
                    with proxy.lock:
                        proxy.refused += 1
                    payload = (b'{"error":{"type":"security_exception","reason":"unable to authenticate user '
                               b'for REST request"},"status":401}')
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                    self.send_header("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"')
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                action = None
                if "/_bulk" in self.path:
                    with proxy.lock:
                        proxy.bulk_requests += 1
                        if proxy.plan:
                            action = proxy.plan.pop(0)
                            proxy.injected += 1
                if action and action[0] == "status":
                    payload = b'{"error":{"type":"injected"},"status":%d}' % action[1]
                    self.send_response(action[1])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if "/_bulk" in self.path:
                    with proxy.lock:
                        proxy.forwarded += 1
                if action and action[0] == "delay":
                    time.sleep(action[1])
                if action and action[0] == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, status: int, times: int):
        self.plan.extend([("status", status)] * times)

    def drop_after_forward(self, times: int):
        self.plan.extend([("drop", 0)] * times)

    def delay_after_forward(self, seconds: float, times: int):
        self.plan.extend([("delay", seconds)] * times)

    def require_basic_auth(self, user: str, password: str):
        import base64

        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def es_fault_proxy(es_url):
    proxy = FaultProxy(es_url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real labelled data. Absent on a user's clone (tests skip), required under CI."""
    path = Path(os.environ.get("DEDUP_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing under CI: quality tests must not be skipped silently")
        pytest.skip(f"{path} not present (real labelled data ships beside the repository, not in it)")
    return path
