"""nbdkit's curl plugin serving an HTTP image as an NBD export on a unix socket, for qemu-img to read in place."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import TransientError
from .sources.http import USER_AGENT, HttpConfig
from .tls import write_bundle

NBDKIT = "nbdkit"
_START_TIMEOUT = 30.0


def available() -> bool:
    return shutil.which(NBDKIT) is not None


def curl_argv(config: HttpConfig, socket_path: str, workdir: str) -> list[str]:
    """nbdkit read-only over the URL, with retry (transient errors).

    No readahead filter (upstream's choice): nbdkit 1.32 says itself that it does nothing over the curl plugin
    (which has neither NBD_CMD_CACHE nor a parallel thread model), and measured it only adds time."""
    argv = [
        NBDKIT, "-r", "-f", "-U", socket_path, "--exit-with-parent",
        "--filter=retry", "curl", f"url={config.url}",
        f"user-agent={USER_AGENT}", "retry-exponential=no",
    ]  # fmt: skip
    if config.insecure:
        argv.append("sslverify=false")
    else:
        bundle = write_bundle(os.path.join(workdir, "ca.pem"), config.cert_dirs)
        if bundle:
            argv.append(f"cainfo={bundle}")
    if config.access_key or config.secret_key:
        # The password goes through a 0600 file, never argv (visible in ps).
        pw = os.path.join(workdir, "password")
        fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config.secret_key)
        argv += [f"user={config.access_key}", f"password=+{pw}"]
    for line in config.headers:
        argv.append(f"header={line}")
    return argv


@contextmanager
def serve(config: HttpConfig) -> Iterator[str]:
    """Run nbdkit for the URL; yields the `nbd+unix://` URI and stops nbdkit afterwards."""
    with tempfile.TemporaryDirectory(prefix="pycdi-nbd-") as workdir:
        sock = os.path.join(workdir, "nbd.sock")
        log = open(os.path.join(workdir, "nbdkit.log"), "w+b")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(curl_argv(config, sock, workdir), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not os.path.exists(sock):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise TransientError(f"nbdkit did not start: {log.read().decode(errors='replace').strip()}")
                time.sleep(0.01)
            yield f"nbd+unix:///?socket={sock}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
