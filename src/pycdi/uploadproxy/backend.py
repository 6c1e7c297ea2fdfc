"""How the proxy reaches upload servers: mTLS with the client certificate and the server CA bundle the upload
controller keeps in CDI's namespace, to the pod's address under its Service's name."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass

from ..api import upload as u
from ..kube.client import KubeClient
from ..kube.errors import NotFound
from ..kube.resources import CONFIG_MAPS, SECRETS


class BackendUnavailable(Exception):
    """The TLS material to reach upload servers is not there (yet)."""


@dataclass(frozen=True)
class ClientMaterial:
    cert_pem: bytes
    key_pem: bytes
    server_ca_pem: bytes


async def load_material(client: KubeClient, namespace: str = u.DEFAULT_CDI_NAMESPACE) -> ClientMaterial:
    """The proxy's client certificate and the CA upload servers' certificates chain to."""
    try:
        secret = await client.get(SECRETS, u.CLIENT_CERT_SECRET, namespace)
        bundle = await client.get(CONFIG_MAPS, u.SERVER_SIGNER_BUNDLE, namespace)
    except NotFound as err:
        raise BackendUnavailable(f"the upload proxy's client certificate is not there yet: {err}") from None
    data = secret.get("data") or {}
    try:
        cert, key = base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
    except (KeyError, ValueError) as err:
        raise BackendUnavailable(f"secret {namespace}/{u.CLIENT_CERT_SECRET} is incomplete: {err}") from None
    ca = str((bundle.get("data") or {}).get(u.BUNDLE_KEY) or "")
    if not ca:
        raise BackendUnavailable(f"configmap {namespace}/{u.SERVER_SIGNER_BUNDLE} has no {u.BUNDLE_KEY}")
    return ClientMaterial(cert, key, ca.encode())


def client_context(material: ClientMaterial) -> ssl.SSLContext:
    """Verify servers against the upload server CA (hostname included); present the proxy's certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=material.server_ca_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a key pair only from files: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="pycdi-uploadproxy-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, material.cert_pem), (key_path, material.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx
