"""A real nginx serving a directory on 127.0.0.1: plain, TLS with our CA, basic auth, ranges off, delays, errors."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pycdi.cluster.apiserver.pki import PKI, ensure_pki, issue_serving_cert

NGINX = "/usr/sbin/nginx"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")  # libnginx-mod-http-echo: echo_sleep
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
ERROR_CODES = (403, 500, 502, 503)  # /status/<code> answers with it, for failure tests


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class NginxServer:
    """A running nginx; `url(name)` is the address of a file under `root`."""

    root: Path
    workdir: Path
    port: int
    scheme: str
    pid: int
    ca_pem: bytes | None = None  # the CA that signed the serving cert (a certConfigMap's ca.pem)
    ca_path: Path | None = None
    credentials: Credentials | None = None
    ranges: bool = True
    delay: float = 0.0
    _flaky: _FlakyBackend | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name.lstrip('/')}"

    def status_url(self, code: int) -> str:
        """A URL that always answers `code` (one of ERROR_CODES) with a custom error page."""
        if code not in ERROR_CODES:
            raise ValueError(f"only {ERROR_CODES} are configured")
        return f"{self.base_url}/status/{code}"

    def flaky_url(self, name: str, failures: int, mode: str = "503") -> str:
        """A URL for file `name` whose first `failures` requests fail (503, or `mode="reset"`: the connection
        is closed without an answer, curl's "empty reply"), and later ones are served by nginx from `root`
        (auth and ranges as configured; the delay does not apply to flaky URLs)."""
        if mode not in ("503", "reset"):
            raise ValueError("mode is 503 or reset")
        return f"{self.base_url}/flaky/{mode}/{failures}/{secrets.token_hex(6)}/{name.lstrip('/')}"

    def flaky_hits(self, url: str) -> int:
        """How many requests reached the flaky URL so far."""
        assert self._flaky is not None
        return self._flaky.hits.get(url.removeprefix(self.base_url), 0)

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"


class _FlakyHandler(BaseHTTPRequestHandler):
    """Fails the first N requests of a path; then hands the request back to nginx with X-Accel-Redirect so
    nginx serves the file itself (ranges, auth and all)."""

    server: _FlakyBackend

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _answer(self) -> None:
        parts = self.path.split("?")[0].split("/", 6)  # "", flaky, mode, failures, token, name
        if len(parts) < 6 or parts[1] != "flaky" or not parts[3].isdigit():
            self.send_error(404)
            return
        mode, failures, name = parts[2], int(parts[3]), parts[5]
        with self.server.lock:
            seen = self.server.hits.get(self.path, 0)
            self.server.hits[self.path] = seen + 1
        if seen < failures:
            if mode == "reset":
                # SO_LINGER 0: close sends RST, what a client sees as "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(503, "Service Unavailable")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Accel-Redirect", f"/_files/{name}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _FlakyBackend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving_cert_files(workdir: Path, pki_dir: Path, common_name: str) -> tuple[tuple[Path, Path], PKI]:
    """A serving cert and key for 127.0.0.1 and localhost, signed by the CA in `pki_dir` (made if missing)."""
    pki = ensure_pki(pki_dir)
    cert_pem, key_pem = issue_serving_cert(pki, common_name, ["127.0.0.1", "localhost"])
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    cert.write_bytes(cert_pem)
    key.touch(mode=0o600)
    key.write_bytes(key_pem)
    return (cert, key), pki


def apr1_htpasswd(path: Path, username: str, password: str) -> None:
    """An htpasswd file nginx reads, hashed with `openssl passwd -apr1` (Apache's MD5-crypt)."""
    done = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password, capture_output=True,
                          text=True, check=True, timeout=30)
    path.write_text(f"{username}:{done.stdout.strip()}\n")


def _config(*, root: Path, workdir: Path, port: int, tls: tuple[Path, Path] | None, htpasswd: Path | None,
            ranges: bool, delay: float, flaky_port: int) -> str:
    w = workdir
    lines = []
    if delay:
        lines.append(f"load_module {ECHO_MODULE};")
    if os.geteuid() == 0:
        # Workers would otherwise drop to nobody, who cannot read a 0700 pytest tmp dir.
        lines.append("user root;")
    listen = f"listen 127.0.0.1:{port}{' ssl' if tls else ''};"
    tls_lines = f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};" if tls else ""
    auth = f'auth_basic "pycdi test"; auth_basic_user_file {htpasswd};' if htpasswd else ""
    # echo_sleep delays the answer, then echo_exec hands the request to the static handler (ranges intact).
    serve = f"echo_sleep {delay:.3f}; echo_exec @file;" if delay else "try_files $uri =404;"
    status = "\n".join(f"location = /status/{c} {{ return {c}; }}" for c in ERROR_CODES)
    lines += [
        "daemon off;", "master_process on;", "worker_processes 1;", f"pid {w}/nginx.pid;",
        # Bounded graceful stop: a client stuck mid-download must not keep a worker alive past teardown.
        "worker_shutdown_timeout 2s;",
        f"error_log {w}/error.log info;", "events { worker_connections 512; }",
        "http {",
        f"access_log {w}/access.log;",
        f"client_body_temp_path {w}/tmp/body; proxy_temp_path {w}/tmp/proxy; fastcgi_temp_path {w}/tmp/fcgi;",
        f"uwsgi_temp_path {w}/tmp/uwsgi; scgi_temp_path {w}/tmp/scgi;",
        "default_type application/octet-stream; types { text/html html; }",
        "sendfile on; tcp_nopush on; keepalive_timeout 30;",
        "server {", listen, tls_lines, f"root {root};", auth,
        "" if ranges else "max_ranges 0;",
        "error_page 404 /_errors/404.html; error_page 403 500 502 503 /_errors/50x.html;",
        f"location ^~ /_errors/ {{ internal; alias {w}/errors/; auth_basic off; }}",
        f"location ^~ /_files/ {{ internal; alias {root}/; {'' if ranges else 'max_ranges 0;'} }}",
        # A backend that closed the connection on purpose shows as 502 here; 444 passes that on to the client
        # as a connection closed without an answer.
        f"location ^~ /flaky/ {{ proxy_pass http://127.0.0.1:{flaky_port}; error_page 502 = @drop; }}",
        "location @drop { return 444; }",
        status,
        f"location / {{ {serve} }}",
        "location @file { }" if delay else "",
        "}", "}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


@contextmanager
def nginx_server(workdir: Path, root: Path, *, tls: bool = False, auth: Credentials | None = None,
                 ranges: bool = True, delay: float = 0.0, pki_dir: Path | None = None) -> Iterator[NginxServer]:
    """Run nginx serving `root` until the block ends. `tls`: a cert for 127.0.0.1/localhost signed by the CA in
    `pki_dir` (default workdir/pki, made with ensure_pki). `delay`: seconds added to every file request."""
    if delay and not ECHO_MODULE.exists():
        raise RuntimeError(f"{ECHO_MODULE} is missing (libnginx-mod-http-echo; scripts/setup.sh installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "errors"):
        (workdir / sub).mkdir(exist_ok=True)
    (workdir / "errors" / "404.html").write_text("<html><body><h1>pycdi test: no such file</h1></body></html>\n")
    (workdir / "errors" / "50x.html").write_text("<html><body><h1>pycdi test: server error</h1></body></html>\n")
    ca_pem = ca_path = cert = None
    if tls:
        cert, pki = serving_cert_files(workdir, pki_dir or workdir / "pki", "pycdi-test-nginx")
        ca_pem, ca_path = pki.ca_cert_pem, pki.ca_cert_path
    htpasswd = None
    if auth:
        htpasswd = workdir / "htpasswd"
        apr1_htpasswd(htpasswd, auth.username, auth.password)
    flaky = _FlakyBackend()
    threading.Thread(target=flaky.serve_forever, args=(0.05,), name="nginx-flaky", daemon=True).start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(5):  # another process may take the free port between probe and bind
            port = free_port()
            conf = workdir / "nginx.conf"
            conf.write_text(_config(root=root.resolve(), workdir=workdir.resolve(), port=port, tls=cert,
                                    htpasswd=htpasswd, ranges=ranges, delay=delay,
                                    flaky_port=flaky.server_address[1]))
            with open(workdir / "stderr.log", "ab") as stderr:
                proc = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(conf), "-e",
                                         str(workdir / "error.log")], stdout=subprocess.DEVNULL, stderr=stderr)
            if wait_listening(proc, port):
                break
            stop(proc)
            err = (workdir / "error.log").read_text(errors="replace") if (workdir / "error.log").exists() else ""
            if "Address already in use" not in err:
                raise RuntimeError(f"nginx did not start: {err[-2000:]}")
        else:
            raise RuntimeError("nginx found no free port in 5 attempts")
        assert proc is not None
        yield NginxServer(root=root, workdir=workdir, port=port, scheme="https" if tls else "http", pid=proc.pid,
                          ca_pem=ca_pem, ca_path=ca_path, credentials=auth, ranges=ranges, delay=delay,
                          _flaky=flaky)
    finally:
        if proc is not None:
            stop(proc)
        flaky.shutdown()
        flaky.server_close()


def wait_listening(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s, suppress(OSError):
            s.settimeout(0.2)
            s.connect(("127.0.0.1", port))
            return True
        time.sleep(0.02)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (graceful: workers finish their requests), then SIGKILL to the master and its workers by PID."""
    if proc.poll() is not None:
        return
    workers = children(proc.pid)
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGQUIT)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *workers]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
