"""Security: TLS verified by default (a self-signed server is refused without its CA), and a planted
secret never shows up in logs, outputs, summaries, the report or error messages."""
import datetime
import ipaddress
import json
import logging
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipelines.dedup import main, run
from transforms.io.elasticsearch_store import EsConfig, check_cluster
from transforms.records import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "corpus.jsonl"
pytestmark = pytest.mark.reliability


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1 (cryptography, no openssl binary needed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class _FakeCluster(BaseHTTPRequestHandler):
    """Answers like a healthy single-node Elasticsearch: health green, no such index."""

    def _reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/_cluster/health"):
            self._reply(200, json.dumps({"cluster_name": "tls", "status": "green"}).encode())
        else:
            self._reply(404, b"{}")

    def do_HEAD(self):  # noqa: N802
        self._reply(404)

    def log_message(self, *args):
        pass


@pytest.fixture()
def tls_server(tmp_path):
    key, cert = self_signed(tmp_path)
    server = HTTPServer(("127.0.0.1", 0), _FakeCluster)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()


def test_tls_is_verified_by_default_and_a_self_signed_server_needs_its_ca(tls_server):
    url, cert = tls_server
    assert EsConfig().verify_certs is True
    with pytest.raises(ConfigError, match="(?s)TLS.*(CERTIFICATE_VERIFY_FAILED|certificate verify failed).*--es_ca_certs"):
        check_cluster(EsConfig(url=url, index="tls-test"))
    assert check_cluster(EsConfig(url=url, index="tls-test", ca_certs=str(cert)))["status"] == "green"
    assert check_cluster(EsConfig(url=url, index="tls-test", verify_certs=False))["status"] == "green"  # opt-out


def test_a_planted_secret_never_appears_in_logs_outputs_or_errors(es_url, es_client, tmp_path, monkeypatch,
                                                                  caplog, capsys, tls_server):
    secret = f"PLANTED-{uuid.uuid4().hex}"
    monkeypatch.setenv("DEDUP_TEST_API_KEY", secret)
    index = f"test-secret-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)
    try:
        run(["--input", str(DEMO), "--output", str(out), "--es_url", es_url, "--es_index", index,
             "--es_api_key_env", "DEDUP_TEST_API_KEY", "--report_top", "5"])
    finally:
        es_client.indices.delete(index=f"{index}*", ignore_unavailable=True)
    assert (out / "report.html").exists() and (out / "summary.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["indexed"] > 0  # the secret was sent with every request and the job worked

    # Error paths: a refused TLS server and credentials inside the URL.
    url, _ = tls_server
    code = main(["--input", str(DEMO), "--output", str(tmp_path / "never"), "--es_url", url,
                 "--es_api_key_env", "DEDUP_TEST_API_KEY"])
    assert code == 2
    with_password = url.replace("https://", f"https://user:{secret}@")
    code = main(["--input", str(DEMO), "--output", str(tmp_path / "never"), "--es_url", with_password])
    assert code == 2
    captured = capsys.readouterr()
    assert "***@" in captured.err  # the URL is shown, its password is not

    haystacks = {"logs": caplog.text, "stdout": captured.out, "stderr": captured.err}
    for path in out.rglob("*"):
        if path.is_file():
            haystacks[str(path.relative_to(out))] = path.read_bytes().decode("utf-8", "replace")
    assert len(haystacks) > 10 and sum(map(len, haystacks.values())) > 100_000  # really looked at things
    leaked = [name for name, text in haystacks.items() if secret in text]
    assert not leaked, leaked
