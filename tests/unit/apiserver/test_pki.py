"""Tests for the cluster PKI: idempotent creation, certificate contents, TLS handshakes, kubeconfig."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import shutil
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from pycdi.cluster.apiserver import pki as pki_mod
from pycdi.cluster.apiserver.pki import (
    PKI,
    ensure_pki,
    issue_serving_cert,
    render_kubeconfig,
    server_ssl_context,
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


def _handshake(server_ctx: ssl.SSLContext, ca_pem: bytes, hostname: str) -> None:
    """A full TLS handshake in memory (no sockets) with hostname verification on the client."""
    client_ctx = ssl.create_default_context(cadata=ca_pem.decode())
    # Python 3.13 verifies strictly by default (RFC 5280 profile: AKI, key usages); so do we.
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, obj in (("c", client), ("s", server)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_files_and_permissions(shared: PKI) -> None:
    for p in (shared.ca_key_path, shared.server_key_path, shared.sa_key_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert shared.ca_cert_path.read_bytes() == shared.ca_cert_pem
    assert shared.sa_public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_ca_and_serving_cert_contents(shared: PKI) -> None:
    ca = x509.load_pem_x509_certificate(shared.ca_cert_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= dt.timedelta(days=3649)
    cert = x509.load_pem_x509_certificate(shared.server_cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_idempotent_and_renews_serving_cert_only(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    server_pem = first.server_cert_path.read_bytes()
    sa_key = first.sa_key_path.read_bytes()
    again = ensure_pki(tmp_path)
    assert again == first
    assert again.server_cert_path.read_bytes() == server_pem
    # A new host is not covered: the serving cert is re-issued by the same CA, the rest is kept.
    third = ensure_pki(tmp_path, hosts=("127.0.0.1", "localhost", "::1", "node1.example"))
    assert third.ca_cert_pem == first.ca_cert_pem
    assert third.sa_key_path.read_bytes() == sa_key
    new_cert = x509.load_pem_x509_certificate(third.server_cert_path.read_bytes())
    assert "node1.example" in new_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_expiring_serving_cert_is_renewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_pki(tmp_path)
    old = first.server_cert_path.read_bytes()
    real_now = pki_mod._now
    monkeypatch.setattr(pki_mod, "_now", lambda: real_now() + dt.timedelta(days=340))
    ensure_pki(tmp_path)
    assert first.server_cert_path.read_bytes() != old


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_tls_handshake_verifies_hostnames(shared: PKI, hostname: str) -> None:
    _handshake(server_ssl_context(shared), shared.ca_cert_pem, hostname)


def test_tls_handshake_rejects_other_host(shared: PKI) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ssl_context(shared), shared.ca_cert_pem, "example.com")


def test_issue_serving_cert_for_other_servers(shared: PKI, tmp_path: Path) -> None:
    cert_pem, key_pem = issue_serving_cert(
        shared, "cdi-uploadproxy", ["127.0.0.1", "cdi-uploadproxy.cdi.svc"]
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(shared.ca_cert_pem))
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    _handshake(ctx, shared.ca_cert_pem, "cdi-uploadproxy.cdi.svc")


def test_render_kubeconfig_structure(shared: PKI) -> None:
    text = render_kubeconfig("https://127.0.0.1:6443", shared.ca_cert_pem, "alice", "tok123", namespace="ns1")
    cfg = yaml.safe_load(text)
    assert cfg["current-context"] == "pycdi"
    (cluster,) = cfg["clusters"]
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == shared.ca_cert_pem
    assert cfg["users"] == [{"name": "alice", "user": {"token": "tok123"}}]
    assert cfg["contexts"] == [
        {"name": "pycdi", "context": {"cluster": "pycdi", "user": "alice", "namespace": "ns1"}}
    ]


_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        _Recorder.seen.append(self.headers.get("Authorization"))
        body = json.dumps(_VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def tls_server(shared: PKI) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.socket = server_ssl_context(shared).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_real_kubectl_trusts_ca_and_sends_token(shared: PKI, tls_server: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(render_kubeconfig(tls_server, shared.ca_cert_pem, "alice", "sekret"))
    _Recorder.seen.clear()
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["gitVersion"] == "v1.30.0"
    assert "Bearer sekret" in _Recorder.seen


def test_python_kubernetes_client_uses_kubeconfig(shared: PKI, tls_server: str, tmp_path: Path) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        render_kubeconfig(tls_server, shared.ca_cert_pem, "bob", "tok-bob", cluster_name="c1")
    )
    _Recorder.seen.clear()
    api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        info = kubernetes.client.VersionApi(api_client).get_code()
    finally:
        api_client.close()
    assert info.git_version == "v1.30.0"
    assert "Bearer tok-bob" in _Recorder.seen
