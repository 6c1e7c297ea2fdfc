"""Test harness: a real `pycdi up` in a subprocess, and the real kubectl pointed at it."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")
START_TIMEOUT = 60.0


@dataclass
class Cluster:
    """A running `pycdi up` with its data directory, kubeconfig and helpers to talk to it."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        return config

    @property
    def server(self) -> str:
        return str(self._config()["clusters"][0]["cluster"]["server"])

    @property
    def token(self) -> str:
        return str(self._config()["users"][0]["user"]["token"])

    def ssl_context(self) -> ssl.SSLContext:
        import base64

        ca = base64.b64decode(self._config()["clusters"][0]["cluster"]["certificate-authority-data"])
        context = ssl.create_default_context()
        context.load_verify_locations(cadata=ca.decode())
        return context

    def start(self) -> Cluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.kubeconfig.exists():
            self.kubeconfig.unlink()
        self.log_path = self.data_dir / "pycdi-up.log"
        env = {**os.environ, **self.extra_env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pycdi", "up", "--data-dir", str(self.data_dir), "--api-port", "0",
                 "--upload-proxy-port", "0"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"pycdi up exited with {self.process.returncode}:\n{self.log()}")
            if self.kubeconfig.exists():
                try:
                    if self.get_raw("/readyz") == "ok":
                        return
                except OSError:
                    pass
            time.sleep(delay)  # start-up has no event to wait on from outside the process
            delay = min(delay * 1.5, 0.5)
        raise RuntimeError(f"pycdi up did not become ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # ---- talking to it ---------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                content_type: str = "application/json", headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if token is None:
            token = self.token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None and content_type:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as resp:
                text = resp.read()
                status, hdrs = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as e:
            text, status, hdrs = e.read(), e.code, dict(e.headers)
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError:
            payload = text.decode(errors="replace")
        return status, payload, hdrs

    def get_raw(self, path: str) -> str:
        req = urllib.request.Request(self.server + path)
        req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=5) as resp:
            return str(resp.read().decode())

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cache = self.data_dir / "kubectl-cache"
        cmd = [KUBECTL, "--kubeconfig", str(kubeconfig or self.kubeconfig), "--cache-dir", str(cache), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def kubectl_json(self, *args: str, kubeconfig: Path | None = None) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json", kubeconfig=kubeconfig).stdout)

    def pycdi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "pycdi", *args], capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"pycdi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def new_user(self, name: str, namespace: str = "default") -> Path:
        out = self.pycdi("user", "create", name, "--namespace", namespace, "--data-dir", str(self.data_dir))
        path = self.data_dir / f"kubeconfig-{name}"
        path.write_text(out.stdout)
        return path
