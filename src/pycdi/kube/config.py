"""Reading a kubeconfig: the server, its CA and the bearer token of the current context."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ClientConfig:
    server: str
    token: str
    ca_pem: bytes | None
    namespace: str = "default"
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem.decode())
        return context

    def ca_file(self) -> str:
        """A file holding the CA, for tools that want a path."""
        handle = tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False)
        with handle:
            handle.write(self.ca_pem or b"")
        return handle.name


class ConfigError(Exception):
    pass


def default_kubeconfig_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def load_kubeconfig(path: Path | None = None, context: str | None = None) -> ClientConfig:
    path = path or default_kubeconfig_path()
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e}") from None
    ctx_name = context or doc.get("current-context", "")
    contexts = {c["name"]: c.get("context", {}) for c in doc.get("contexts") or []}
    if ctx_name not in contexts:
        raise ConfigError(f"context {ctx_name!r} not found in {path}")
    ctx = contexts[ctx_name]
    clusters = {c["name"]: c.get("cluster", {}) for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster", ""), {})
    user = users.get(ctx.get("user", ""), {})
    ca_pem: bytes | None = None
    if cluster.get("certificate-authority-data"):
        ca_pem = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        ca_pem = Path(cluster["certificate-authority"]).read_bytes()
    token = user.get("token", "")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return ClientConfig(server=cluster.get("server", ""), token=token, ca_pem=ca_pem,
                        namespace=ctx.get("namespace", "default") or "default",
                        insecure=bool(cluster.get("insecure-skip-tls-verify")))
