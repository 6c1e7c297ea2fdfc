"""The cluster's TLS material: a CA, the API serving certificate, the ServiceAccount key, kubeconfigs."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pycdi.atomicfile import write_atomic

CA_VALIDITY = dt.timedelta(days=3650)
SERVING_VALIDITY = dt.timedelta(days=365)
# A serving certificate this close to expiry is re-issued by ensure_pki, so a long-lived data
# directory never starts with a certificate that kubectl will reject next week.
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates are back-dated a little so that a client whose clock is slightly behind accepts them.
BACKDATE = dt.timedelta(minutes=5)

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class PKI:
    directory: Path
    ca_cert_pem: bytes
    ca_cert_path: Path
    ca_key_path: Path
    server_cert_path: Path
    server_key_path: Path
    sa_key_path: Path
    sa_public_key_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)




def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("unsupported private key type")
    return key


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # de-duplicated, order kept
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _create_ca() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pycdi-ca")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier(
            x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key()).digest,
            None, None)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _sign_serving(ca_cert_pem: bytes, ca_key_pem: bytes, common_name: str,
                  hosts: Sequence[str]) -> tuple[bytes, bytes]:
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = _load_key(ca_key_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    # Never outlive the CA: verifiers reject a chain whose issuer expired first.
    not_after = min(now + SERVING_VALIDITY, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _host_key(host: str) -> str:
    """A host as it compares to a SAN entry: IPs in canonical form, DNS names case-folded."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _serving_cert_usable(cert_pem: bytes, ca_cert_pem: bytes, hosts: Sequence[str]) -> bool:
    """True when the stored serving cert is from this CA, covers `hosts` and is not about to expire."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_cert_pem)
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    have = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    have |= {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    wanted = {_host_key(h) for h in hosts}
    return wanted <= have and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def ensure_pki(directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> PKI:
    """Create the cluster's CA, serving cert and ServiceAccount key under `directory`, or reuse them.

    Idempotent: existing files are kept. The serving certificate alone is re-issued (by the same CA)
    when it no longer covers `hosts` or expires within RENEW_BEFORE, so clients keep trusting the CA.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    server_cert_path, server_key_path = directory / "server.crt", directory / "server.key"
    sa_key_path, sa_pub_path = directory / "sa.key", directory / "sa.pub"

    if not (ca_cert_path.exists() and ca_key_path.exists()):
        cert_pem, key_pem = _create_ca()
        write_atomic(ca_key_path, key_pem, 0o600)
        write_atomic(ca_cert_path, cert_pem, 0o644)
        # A new CA invalidates anything the old one signed.
        server_cert_path.unlink(missing_ok=True)
    ca_cert_pem = ca_cert_path.read_bytes()

    if not (server_cert_path.exists() and server_key_path.exists()
            and _serving_cert_usable(server_cert_path.read_bytes(), ca_cert_pem, hosts)):
        cert_pem, key_pem = _sign_serving(ca_cert_pem, ca_key_path.read_bytes(), "pycdi-apiserver", hosts)
        write_atomic(server_key_path, key_pem, 0o600)
        write_atomic(server_cert_path, cert_pem, 0o644)

    if not sa_key_path.exists():
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_atomic(sa_key_path, _key_pem(sa_key), 0o600)
        sa_pub_path.unlink(missing_ok=True)
    if not sa_pub_path.exists():
        public = _load_key(sa_key_path.read_bytes()).public_key()
        write_atomic(sa_pub_path, public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)

    return PKI(directory=directory, ca_cert_pem=ca_cert_pem, ca_cert_path=ca_cert_path,
               ca_key_path=ca_key_path,
               server_cert_path=server_cert_path, server_key_path=server_key_path, sa_key_path=sa_key_path,
               sa_public_key_pem=sa_pub_path.read_bytes())


def server_ssl_context(pki: PKI, *, request_client_certs: bool = False) -> ssl.SSLContext:
    """TLS server context with the API serving cert.

    With `request_client_certs` the server asks for (but does not require) a client certificate
    signed by the cluster CA, which lets an authenticator accept client-cert users.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    # kubectl (Go) negotiates h2 if offered; aiohttp speaks only HTTP/1.1.
    ctx.set_alpn_protocols(["http/1.1"])
    if request_client_certs:
        ctx.load_verify_locations(cadata=pki.ca_cert_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def issue_serving_cert(pki: PKI, common_name: str, hosts: Sequence[str]) -> tuple[bytes, bytes]:
    """(cert_pem, key_pem) for another server (upload proxy, upload server), signed by the cluster CA."""
    return _sign_serving(pki.ca_cert_pem, pki.ca_key_path.read_bytes(), common_name, hosts)


def render_kubeconfig(server_url: str, ca_pem: bytes, user: str, token: str, namespace: str = "default",
                      cluster_name: str = "pycdi", context_name: str | None = None) -> str:
    """A kubeconfig (YAML) for `user` with a bearer token; the CA is embedded, the context is current.

    The context is named `cluster_name` unless `context_name` says otherwise.
    """
    context = context_name or cluster_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": {
            "server": server_url,
            "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user,
                                                   "namespace": namespace}}],
        "current-context": context,
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
