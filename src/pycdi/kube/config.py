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
    #: Client-certificate authentication (kubeconfig `client-certificate(-data)` / `client-key(-data)`).
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    #: Re-read the bearer token from this file (in-cluster: the projected token rotates).
    token_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem.decode())
        if self.client_cert_pem and self.client_key_pem:
            # ssl wants paths: write both to a private directory that is removed once loaded.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert.write_bytes(self.client_cert_pem)
                key.write_bytes(self.client_key_pem)
                context.load_cert_chain(str(cert), str(key))
        return context

    def bearer_token(self) -> str:
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError:
                pass  # keep the token read at start-up
        return self.token

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
                        insecure=bool(cluster.get("insecure-skip-tls-verify")),
                        client_cert_pem=_pem(user, "client-certificate"),
                        client_key_pem=_pem(user, "client-key"))


def _pem(section: dict[str, Any], key: str) -> bytes | None:
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"])
    if section.get(key):
        return Path(section[key]).read_bytes()
    return None


#: Where a pod finds its ServiceAccount credentials (as client-go's rest.InClusterConfig reads them).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").exists()


def load_incluster_config(directory: Path = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST is not set")
    token_path = directory / "token"
    try:
        token = token_path.read_text().strip()
        ca_pem = (directory / "ca.crt").read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the service account credentials: {e}") from None
    namespace_path = directory / "namespace"
    namespace = namespace_path.read_text().strip() if namespace_path.exists() else "default"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 service address
    return ClientConfig(server=f"https://{host}:{port}", token=token, ca_pem=ca_pem, namespace=namespace,
                        token_file=str(token_path))


def load_config(kubeconfig: Path | None = None, context: str | None = None) -> ClientConfig:
    """As client-go's clientcmd: an explicit kubeconfig, else in-cluster, else $KUBECONFIG or ~/.kube/config."""
    if kubeconfig is None and not os.environ.get("KUBECONFIG") and in_cluster():
        return load_incluster_config()
    return load_kubeconfig(kubeconfig, context)
