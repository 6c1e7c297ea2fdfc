"""The upload benchmark's floor for a TLS proxy hop: nginx terminating the client's TLS and relaying the body
unbuffered over a second TLS connection (verified against our CA, with the proxy's client certificate) to the
sink, which is what the upload proxy does, done in C; or, for comparison, over plain HTTP (the research notes'
single TLS hop). It shows what the architecture costs on this machine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.nginx import NGINX, free_port, stop, wait_listening


@dataclass(frozen=True)
class TlsRelay:
    port: int
    pid: int  # nginx's master; its worker is its child


def _config(work: Path, port: int, pki: Path, upstream_port: int, upstream_tls: bool) -> str:
    upstream = f"""proxy_pass https://127.0.0.1:{upstream_port};
      proxy_ssl_certificate {pki}/uploadproxy.crt; proxy_ssl_certificate_key {pki}/uploadproxy.key;
      proxy_ssl_trusted_certificate {pki}/ca.crt;
      proxy_ssl_verify on; proxy_ssl_name localhost;""" if upstream_tls else \
        f"proxy_pass http://127.0.0.1:{upstream_port};"
    # A 1 MiB body buffer: relayed in large writes (the 16 KiB default costs nginx a third more CPU here).
    return f"""daemon off; master_process on; worker_processes 1; pid {work}/nginx.pid; user root;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {pki}/uploadproxy.crt; ssl_certificate_key {pki}/uploadproxy.key;
    client_max_body_size 0; client_body_buffer_size 1m;
    location / {{
      {upstream}
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_read_timeout 600s; proxy_send_timeout 600s;
    }}
  }}
}}
"""


@contextmanager
def nginx_tls_relay(work: Path, pki: Path, upstream_port: int, upstream_tls: bool = True) -> Iterator[TlsRelay]:
    """nginx on 127.0.0.1 relaying to https://127.0.0.1:`upstream_port` (http:// without `upstream_tls`),
    stopped (by PID) when the block ends."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(_config(work, port, pki, upstream_port, upstream_tls))
    proc = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_listening(proc, port):
            log = (work / "error.log").read_text(errors="replace") if (work / "error.log").exists() else ""
            raise RuntimeError(f"the nginx TLS relay did not start: {log[-2000:]}")
        yield TlsRelay(port, proc.pid)
    finally:
        stop(proc)
