"""`pycdi uploadserver` as the upload pod runs it: configured by its environment, it exits after one upload
(termination message "Upload Complete") or on SIGTERM (a transient failure)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycdi.controllers.uploadpod.certs import issue
from tests.unit.uploadserver.conftest import Certs, MiB, sha256


class Worker:
    def __init__(self, tmp_path: Path, certs: Certs) -> None:
        self.volume = tmp_path / "volume"
        self.volume.mkdir()
        self.termination = tmp_path / "termination-log"
        cert, key = certs.write("server", issue(certs.server_ca, "localhost", hosts=["localhost"]))
        ca = certs.dir / "client-ca.crt"
        ca.write_bytes(certs.client_ca.cert_pem)
        env = {**os.environ, "LISTEN_ADDRESS": "127.0.0.1", "LISTEN_PORT": "0",
               "PYCDI_PATH_MAP": json.dumps({"/data": str(self.volume)}), "UPLOAD_IMAGE_SIZE": "64Mi",
               "FILESYSTEM_OVERHEAD": "0", "TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key),
               "CLIENT_CERT_FILE": str(ca), "PYCDI_TERMINATION_MESSAGE_PATH": str(self.termination)}
        self.proc = subprocess.Popen([sys.executable, "-m", "pycdi", "uploadserver"], env=env,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if found := re.search(r"Running server on 127\.0\.0\.1:(\d+)", line):
                self.port = int(found.group(1))
                break
        else:
            pytest.fail(f"the server did not start (exit {self.proc.wait()})")
        self.context = certs.client_context()

    def request(self, method: str, path: str, data: bytes | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(f"https://localhost:{self.port}{path}", data=data, method=method)
        with urllib.request.urlopen(req, context=self.context, timeout=60) as resp:
            return resp.status, resp.read()

    def wait(self) -> tuple[int, dict[str, object]]:
        code = self.proc.wait(30)
        return code, json.loads(self.termination.read_text())


@pytest.fixture
def worker(tmp_path: Path, certs: Certs) -> Iterator[Worker]:
    w = Worker(tmp_path, certs)
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()
    if w.proc.stderr is not None:
        w.proc.stderr.close()


def test_the_worker_exits_after_the_upload(worker: Worker) -> None:
    assert worker.request("GET", "/healthz") == (200, b"OK")
    data = bytes(range(256)) * 4 * 1024 * 3  # 3 MiB
    assert worker.request("POST", "/v1beta1/upload", data) == (200, b"")
    assert worker.wait() == (0, {"message": "Upload Complete", "preallocationApplied": False})
    disk = (worker.volume / "disk.img").read_bytes()
    assert len(disk) == 64 * MiB and sha256(disk[:len(data)]) == sha256(data)


def test_sigterm_stops_a_waiting_worker(worker: Worker) -> None:
    idle = http.client.HTTPSConnection("localhost", worker.port, context=worker.context, timeout=60)
    try:
        idle.request("GET", "/healthz")  # a keep-alive connection stays open meanwhile
        assert idle.getresponse().read() == b"OK"
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait() == (1, {"message": "the upload server was stopped before an upload completed",
                                     "transient": True})
    finally:
        idle.close()
