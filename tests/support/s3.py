"""A real S3-compatible server for tests: moto's standalone server on 127.0.0.1, optionally TLS and IAM-checked."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

from tests.support.nginx import free_port, serving_cert_files

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: Keys of a server that checks no signature (moto's default): any key works there.
OPEN_KEYS = ("pycdi-test-access", "pycdi-test-secret")
_ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass
class S3Server:
    """A running moto_server. With `iam_auth`, every S3 request must be SigV4-signed with `access_key`/`secret_key`
    (an IAM user allowed s3:*), as on AWS; without it, moto accepts any signature and anonymous requests."""

    workdir: Path
    port: int
    scheme: str
    pid: int
    access_key: str
    secret_key: str
    iam_auth: bool
    ca_pem: bytes | None = None  # the CA of the serving cert (a certConfigMap's ca.pem)
    ca_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, bucket: str, key: str) -> str:
        """The path-style URL of an object, as a DataVolume's `s3.url` names it."""
        return f"{self.endpoint}/{bucket}/{key}"

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        return botocore.session.Session().create_client(
            "s3", region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id=access_key or self.access_key, aws_secret_access_key=secret_key or self.secret_key,
            verify=str(self.ca_path) if self.ca_path else True,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )  # fmt: skip

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def upload(self, bucket: str, key: str, path: Path, *, public: bool = False) -> None:
        """Put a file as an object; `public`: readable anonymously (the public-read ACL)."""
        with open(path, "rb") as body:
            self.client().put_object(Bucket=bucket, Key=key, Body=body, **({"ACL": "public-read"} if public else {}))


def _moto_api(endpoint: str, path: str, data: bytes, ca: Path | None) -> None:
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    # text/plain: moto reads the raw body; a form content type would be parsed away.
    req = urllib.request.Request(f"{endpoint}/moto-api/{path}", data=data, method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
        resp.read()


def _iam_user(endpoint: str, ca: Path | None) -> tuple[str, str]:
    """An IAM user allowed s3:*, made while moto still checks nothing; returns its access key."""
    iam = botocore.session.Session().create_client(
        "iam", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=OPEN_KEYS[0],
        aws_secret_access_key=OPEN_KEYS[1], verify=str(ca) if ca else True)  # fmt: skip
    iam.create_user(UserName="pycdi-importer")
    iam.put_user_policy(UserName="pycdi-importer", PolicyName="s3", PolicyDocument=json.dumps(_ALLOW_S3))
    key = iam.create_access_key(UserName="pycdi-importer")["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


@contextmanager
def s3_server(workdir: Path, *, tls: bool = False, iam_auth: bool = False,
              pki_dir: Path | None = None) -> Iterator[S3Server]:
    """Run moto_server until the block ends. `tls`: a cert for 127.0.0.1/localhost signed by the CA in `pki_dir`
    (default workdir/pki). `iam_auth`: requests must be signed by the IAM user the server is given."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_pem = ca_path = None
    argv_tls: list[str] = []
    if tls:
        (cert, key), pki = serving_cert_files(workdir, pki_dir or workdir / "pki", "pycdi-test-s3")
        argv_tls = ["--ssl-cert", str(cert), "--ssl-key", str(key)]
        ca_pem, ca_path = pki.ca_cert_pem, pki.ca_cert_path
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(5):  # another process may take the free port between probe and bind
            port = free_port()
            with open(workdir / "moto.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port),
                                         *argv_tls], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if _wait_listening(proc, port):
                break
            _stop(proc)
        else:
            raise RuntimeError(f"moto_server did not start: {(workdir / 'moto.log').read_text()[-2000:]}")
        assert proc is not None
        endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        access, secret = OPEN_KEYS
        if iam_auth:
            access, secret = _iam_user(endpoint, ca_path)
            _moto_api(endpoint, "reset-auth", b"0", ca_path)  # from now on every request is checked
        yield S3Server(workdir=workdir, port=port, scheme="https" if tls else "http", pid=proc.pid,
                       access_key=access, secret_key=secret, iam_auth=iam_auth, ca_pem=ca_pem, ca_path=ca_path)
    finally:
        if proc is not None:
            _stop(proc)


def _wait_listening(proc: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s, suppress(OSError):
            s.settimeout(0.2)
            s.connect(("127.0.0.1", port))
            return True
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to our moto_server's PID, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)
