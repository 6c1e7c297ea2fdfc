"""Upload TLS material: the CAs the upload controller keeps in CDI's namespace, the proxy's client certificate,
and each upload server's serving certificate (upstream's operator-made signers and `MakeServerCert`)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ...api import upload as u
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, NotFound
from ...kube.resources import CONFIG_MAPS, SECRETS

log = logging.getLogger(__name__)

CA_VALIDITY = dt.timedelta(days=3650)
#: Upload pods are short-lived; the proxy's client certificate is re-issued when it nears its end.
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
BACKDATE = dt.timedelta(minutes=5)
LABELS = {"app": "containerized-data-importer", "cdi.kubevirt.io": ""}

Obj = dict[str, Any]


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(common_name: str) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(ca: KeyPair, common_name: str, *, hosts: Sequence[str] = (), client: bool = False,
          validity: dt.timedelta = LEAF_VALIDITY) -> KeyPair:
    """A serving certificate for `hosts`, or (client=True) a client certificate named `common_name`."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the upload CAs use EC keys")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE)
               .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def usable(pair: KeyPair, ca_cert_pem: bytes) -> bool:
    """Signed by this CA and not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(pair.cert_pem)
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_cert_pem))
        serialization.load_pem_private_key(pair.key_pem, password=None)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


def secret_pair(secret: Obj) -> KeyPair | None:
    data = secret.get("data") or {}
    try:
        return KeyPair(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
    except (KeyError, ValueError, TypeError):
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tls_secret(name: str, namespace: str, pair: KeyPair, extra: dict[str, bytes] | None = None,
               owner: Obj | None = None) -> Obj:
    data = {"tls.crt": _b64(pair.cert_pem), "tls.key": _b64(pair.key_pem)}
    data.update({k: _b64(v) for k, v in (extra or {}).items()})
    meta: Obj = {"name": name, "namespace": namespace, "labels": dict(LABELS)}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta, "data": data}


@dataclass(frozen=True)
class UploadPKI:
    """What the upload controller signs with, and the client CA each upload server trusts."""

    server_ca: KeyPair
    client_ca: KeyPair


class UploadCertificates:
    """Keeps the upload CAs, their bundles and the proxy's client certificate in CDI's namespace.

    Made on first need and kept (restarts and other controller workers reuse them); a lost bundle or an
    expiring client certificate is re-made from the CA it belongs to.
    """

    def __init__(self, client: KubeClient, namespace: str = u.DEFAULT_CDI_NAMESPACE) -> None:
        self.client = client
        self.namespace = namespace
        self._pki: UploadPKI | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> UploadPKI:
        async with self._lock:
            if self._pki is None:
                server_ca = await self._signer(u.SERVER_SIGNER_SECRET, u.SERVER_SIGNER_BUNDLE,
                                               "cdi-uploadserver-signer")
                client_ca = await self._signer(u.CLIENT_SIGNER_SECRET, u.CLIENT_SIGNER_BUNDLE,
                                               "cdi-uploadserver-client-signer")
                await self._client_cert(client_ca)
                self._pki = UploadPKI(server_ca, client_ca)
            return self._pki

    def server_cert(self, pki: UploadPKI, pod_name: str, namespace: str) -> KeyPair:
        """The serving certificate of one upload pod: its Service's names, as the proxy will ask for them."""
        service = u.service_name(pod_name)
        hosts = [u.server_hostname(pod_name, namespace), f"{service}.{namespace}", service]
        return issue(pki.server_ca, hosts[0], hosts=hosts)

    async def _get(self, resource: Any, name: str) -> Obj | None:
        try:
            return await self.client.get(resource, name, self.namespace)
        except NotFound:
            return None

    async def _signer(self, secret_name: str, bundle_name: str, common_name: str) -> KeyPair:
        secret = await self._get(SECRETS, secret_name)
        pair = secret_pair(secret) if secret is not None else None
        if pair is None:
            try:
                await self.client.create(SECRETS, tls_secret(secret_name, self.namespace, new_ca(common_name)))
                log.info("created the upload CA %s/%s", self.namespace, secret_name)
            except AlreadyExists:
                pass  # another worker made it first: use theirs
            secret = await self.client.get(SECRETS, secret_name, self.namespace)
            pair = secret_pair(secret)
            if pair is None:
                raise RuntimeError(f"secret {self.namespace}/{secret_name} holds no CA")
        bundle = await self._get(CONFIG_MAPS, bundle_name)
        text = pair.cert_pem.decode()
        if bundle is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": bundle_name, "namespace": self.namespace, "labels": dict(LABELS)},
                    "data": {u.BUNDLE_KEY: text}}
            try:
                await self.client.create(CONFIG_MAPS, body)
            except AlreadyExists:
                pass
        elif (bundle.get("data") or {}).get(u.BUNDLE_KEY) != text:
            await self.client.patch(CONFIG_MAPS, bundle_name, {"data": {u.BUNDLE_KEY: text}}, self.namespace)
        return pair

    async def _client_cert(self, client_ca: KeyPair) -> None:
        secret = await self._get(SECRETS, u.CLIENT_CERT_SECRET)
        pair = secret_pair(secret) if secret is not None else None
        if pair is not None and usable(pair, client_ca.cert_pem):
            return
        body = tls_secret(u.CLIENT_CERT_SECRET, self.namespace, issue(client_ca, u.UPLOAD_CLIENT_NAME, client=True))
        if secret is None:
            try:
                await self.client.create(SECRETS, body)
            except AlreadyExists:
                return
        else:
            await self.client.patch(SECRETS, u.CLIENT_CERT_SECRET, {"data": body["data"]}, self.namespace)
        log.info("issued the upload proxy's client certificate %s/%s", self.namespace, u.CLIENT_CERT_SECRET)
