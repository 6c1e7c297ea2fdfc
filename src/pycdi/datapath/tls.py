"""TLS trust for workers: the system pool plus the PEM files of a mounted cert dir (certConfigMap)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def read_cert_dir(cert_dir: str | None) -> str:
    """Every regular file in the dir, concatenated (a ConfigMap mount also holds `..data` links: skipped)."""
    if not cert_dir or not os.path.isdir(cert_dir):
        return ""
    pems: list[str] = []
    for entry in sorted(Path(cert_dir).iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        text = entry.read_text(errors="replace")
        if "-----BEGIN CERTIFICATE-----" in text:
            pems.append(text if text.endswith("\n") else text + "\n")
    return "".join(pems)


def ssl_context(cert_dirs: list[str | None], insecure: bool = False) -> ssl.SSLContext:
    """A client context trusting the system CAs and those in `cert_dirs`; no verification when `insecure`."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    extra = "".join(read_cert_dir(d) for d in cert_dirs)
    if extra:
        ctx.load_verify_locations(cadata=extra)
    return ctx


def system_bundle() -> str:
    """The system CA bundle's text (empty when there is none)."""
    paths = [ssl.get_default_verify_paths().cafile, *_SYSTEM_BUNDLES]
    for path in paths:
        if path and os.path.isfile(path):
            return Path(path).read_text(errors="replace")
    return ""


def write_bundle(path: str, cert_dirs: list[str | None]) -> str | None:
    """A CA file for tools (curl in nbdkit): the system bundle plus our certs; None when there is nothing extra."""
    extra = "".join(read_cert_dir(d) for d in cert_dirs)
    if not extra:
        return None
    with open(path, "w") as f:
        f.write(system_bundle())
        f.write(extra)
    return path
