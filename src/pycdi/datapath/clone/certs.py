"""The clone stream's certificate: a short-lived self-signed EC P-256 certificate the controller makes per clone
(the target serves it, the source pins it), and whether one kept in a Secret is still fit to use."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .tls import SERVER_NAME

#: Long enough for a clone's workers to start and retry (the handshake is the only time it is checked), short
#: enough that a leaked key is soon worthless.
VALIDITY = dt.timedelta(days=7)
#: A kept certificate closer than this to its end is replaced before new workers are started with it.
RENEW_BEFORE = dt.timedelta(days=1)
BACKDATE = dt.timedelta(minutes=5)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_certificate() -> tuple[str, str]:
    """(certificate, private key), both PEM: self-signed for SERVER_NAME, for serving only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem.decode()


def usable(cert_pem: str, key_pem: str | None = None) -> bool:
    """A certificate (and, when given, its key) that parses, matches and does not end soon."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        if key_pem is not None:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
            if key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo) != \
                    cert.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo):
                return False
    except (ValueError, TypeError):
        return False
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE
