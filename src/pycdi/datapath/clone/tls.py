"""TLS for the clone stream: the target serves the clone's certificate, the source trusts that certificate alone
(pinned, its name checked) so that it sends the volume only to the real target, encrypted."""

from __future__ import annotations

import os
import socket
import ssl

#: The name in every clone certificate: the source checks it, whatever address it reached the target by.
SERVER_NAME = "cdi-clone-target"


def server_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The material comes in environment variables; OpenSSL loads only files: an anonymous memory file keeps the
    # key off every filesystem.
    fd = os.memfd_create("clone-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, (key_pem.rstrip("\n") + "\n" + cert_pem).encode())
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return ctx


def client_context(cert_pem: str) -> ssl.SSLContext:
    """Trusts exactly the clone's certificate (no system CA) and checks it names SERVER_NAME."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname on
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=cert_pem)
    return ctx


def wrap_client(sock: socket.socket, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    return ctx.wrap_socket(sock, server_hostname=SERVER_NAME)


def wrap_server(sock: socket.socket, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    return ctx.wrap_socket(sock, server_side=True)
