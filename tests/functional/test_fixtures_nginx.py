"""The nginx fixture really serves: full and ranged reads, ranges refused, TLS with our CA, basic auth, errors."""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from pycdi.cluster.apiserver.pki import PKI
from tests.support.fixtures import NginxFactory
from tests.support.nginx import Credentials, NginxServer

DATA = bytes(range(256)) * 4096  # 1 MiB with a recognisable pattern


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "disk.img").write_bytes(DATA)
    return d


def get(server: NginxServer, url: str, headers: dict[str, str] | None = None, method: str = "GET",
        creds: Credentials | None = None, context: ssl.SSLContext | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    h = dict(headers or {})
    if creds:
        h["Authorization"] = "Basic " + b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    if context is None and server.ca_pem:
        context = ssl.create_default_context(cadata=server.ca_pem.decode())
    req = urllib.request.Request(url, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def test_plain_serves_whole_files_and_ranges(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root)
    assert s.base_url.startswith("http://127.0.0.1:")
    status, headers, body = get(s, s.url("disk.img"))
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(DATA).digest()
    assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(DATA)
    status, headers, body = get(s, s.url("disk.img"), {"Range": "bytes=1000-1999"})
    assert status == 206 and body == DATA[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(DATA)}"
    status, headers, _ = get(s, s.url("disk.img"), method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == len(DATA)


def test_curl_range_request(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root)
    done = subprocess.run(["curl", "-sS", "-r", "0-15", "-w", "%{http_code}", s.url("disk.img")],
                          capture_output=True, check=True, timeout=30)
    assert done.stdout == DATA[:16] + b"206"


def test_ranges_off_answers_the_whole_file(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root, ranges=False)
    status, headers, body = get(s, s.url("disk.img"), {"Range": "bytes=1000-1999"})
    assert status == 200 and body == DATA
    assert "Accept-Ranges" not in headers and "Content-Range" not in headers


def test_tls_is_verified_with_our_ca(nginx_factory: NginxFactory, root: Path, fixture_pki: PKI) -> None:
    s = nginx_factory(root, tls=True)
    assert s.base_url.startswith("https://") and s.ca_pem == fixture_pki.ca_cert_pem
    status, _, body = get(s, s.url("disk.img"), {"Range": "bytes=0-9"})
    assert status == 206 and body == DATA[:10]
    with pytest.raises(urllib.error.URLError) as err:
        get(s, s.url("disk.img"), context=ssl.create_default_context())  # the system CAs do not know ours
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)
    assert s.ca_path is not None
    done = subprocess.run(["curl", "-sS", "--cacert", str(s.ca_path), "-o", os.devnull, "-w", "%{http_code}",
                           s.url("disk.img").replace("127.0.0.1", "localhost")],
                          capture_output=True, text=True, check=True, timeout=30)
    assert done.stdout == "200"


def test_basic_auth(nginx_factory: NginxFactory, root: Path) -> None:
    creds = Credentials("importer", "s3cret with spaces")
    s = nginx_factory(root, auth=creds)
    status, headers, _ = get(s, s.url("disk.img"))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert get(s, s.url("disk.img"), creds=Credentials("importer", "wrong"))[0] == 401
    status, _, body = get(s, s.url("disk.img"), {"Range": "bytes=5-9"}, creds=creds)
    assert status == 206 and body == DATA[5:10]
    assert (s.workdir / "htpasswd").read_text().startswith("importer:$apr1$")


def test_tls_and_auth_together(nginx_factory: NginxFactory, root: Path) -> None:
    creds = Credentials("u", "p")
    s = nginx_factory(root, tls=True, auth=creds)
    assert get(s, s.url("disk.img"))[0] == 401
    assert get(s, s.url("disk.img"), creds=creds)[2] == DATA


def test_delay_is_added_to_every_file_request(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root, delay=0.15)
    for headers in ({}, {"Range": "bytes=0-0"}):
        start = time.monotonic()
        status, _, body = get(s, s.url("disk.img"), headers)
        assert time.monotonic() - start >= 0.15
        assert body == (DATA if not headers else DATA[:1]) and status == (206 if headers else 200)
    assert get(s, s.url("missing"))[0] == 404


def test_error_pages(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root)
    status, _, body = get(s, s.url("no-such.qcow2"))
    assert status == 404 and b"pycdi test: no such file" in body
    for code in (403, 500, 502, 503):
        status, _, body = get(s, s.status_url(code))
        assert status == code and b"pycdi test: server error" in body


def test_flaky_url_recovers_after_n_failures(nginx_factory: NginxFactory, root: Path) -> None:
    creds = Credentials("u", "p")
    s = nginx_factory(root, auth=creds)
    url = s.flaky_url("disk.img", failures=2)
    assert get(s, url)[0] == 401  # auth is checked before the failure is counted
    assert [get(s, url, creds=creds)[0] for _ in range(2)] == [503, 503]
    status, _, body = get(s, url, {"Range": "bytes=10-19"}, creds=creds)
    assert status == 206 and body == DATA[10:20]
    assert s.flaky_hits(url) == 3
    other = s.flaky_url("disk.img", failures=1)  # every URL counts on its own
    assert get(s, other, creds=creds)[0] == 503


def test_flaky_reset_closes_the_connection(nginx_factory: NginxFactory, root: Path) -> None:
    s = nginx_factory(root)
    url = s.flaky_url("disk.img", failures=1, mode="reset")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(s, url)
    assert get(s, url)[2] == DATA


def test_stop_ends_the_process_and_frees_the_port(tmp_path: Path, root: Path) -> None:
    from tests.support.nginx import nginx_server
    with nginx_server(tmp_path / "ng", root) as s:
        assert get(s, s.url("disk.img"))[0] == 200
        pid, port = s.pid, s.port
        assert (tmp_path / "ng" / "nginx.pid").read_text().strip() == str(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/disk.img", timeout=2)
    assert "disk.img" in (tmp_path / "ng" / "access.log").read_text()
