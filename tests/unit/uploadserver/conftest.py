"""Fixtures of the upload server tests: certificates, a server on a free port over real mutual TLS."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from pycdi.controllers.uploadpod.certs import KeyPair, issue, new_ca
from pycdi.datapath.target import Target
from pycdi.uploadserver.app import UploadServer
from pycdi.uploadserver.config import ServerConfig
from pycdi.uploadserver.server import BODY_IDLE_TIMEOUT, Listener
from tests.unit.datapath.conftest import write_pattern_raw

MiB = 1 << 20
CLIENT = "client.upload-server.cdi.kubevirt.io"


@dataclass(frozen=True)
class Certs:
    dir: Path
    server_ca: KeyPair
    client_ca: KeyPair

    def write(self, name: str, pair: KeyPair) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        return cert, key

    def client_context(self, common_name: str | None = CLIENT, ca: KeyPair | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.server_ca.cert_pem.decode())
        if common_name is not None:
            cert, key = self.write(f"client-{common_name}", issue(ca or self.client_ca, common_name, client=True))
            ctx.load_cert_chain(cert, key)
        return ctx


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"), new_ca("server-signer"), new_ca("client-signer"))


@dataclass
class Running:
    server: UploadServer
    base: str
    volume: Path
    session: aiohttp.ClientSession
    listener: Listener

    certs: Certs

    async def post(self, path: str, data: object, **kw: object) -> tuple[int, str]:
        async with self.session.post(self.base + path, data=data, **kw) as resp:  # type: ignore[arg-type]
            return resp.status, await resp.text()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw TLS connection with the proxy's certificate, for requests written by hand."""
        host, port = self.base.removeprefix("https://").split(":")
        return await asyncio.open_connection(host, int(port), ssl=self.certs.client_context())


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(tmp_path: Path, certs: Certs) -> AsyncIterator[Start]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def run(*, block: bool = False, scratch: bool = True, size: int = 64 * MiB, until_finished: bool = False,
                  body_idle_timeout: float = BODY_IDLE_TIMEOUT, local_socket: str | None = None) -> Running:
        volume = tmp_path / f"volume-{len(cleanups)}"
        volume.mkdir()
        device = volume / "block.img"
        if block:
            with open(device, "wb") as f:
                f.truncate(size)
        scratch_dir = tmp_path / f"scratch-{len(cleanups)}"
        if scratch:
            scratch_dir.mkdir()
        cert, key = certs.write("server", issue(certs.server_ca, "localhost", hosts=["localhost"]))
        ca = certs.dir / "client-ca.crt"
        ca.write_bytes(certs.client_ca.cert_pem)
        config = ServerConfig(
            target=Target("Block" if block else "Filesystem", str(volume), str(device), image_size=size,
                          overhead=0.0),
            scratch_dir=str(scratch_dir) if scratch else None, bind_address="127.0.0.1", bind_port=0,
            cert_file=str(cert), key_file=str(key), client_ca_file=str(ca))
        server = UploadServer(config)
        # Serving on after the upload finished (unless told): what a finished server answers can be checked.
        listener = Listener(server, "127.0.0.1", 0, body_idle_timeout=body_idle_timeout, local_socket=local_socket)
        thread = threading.Thread(target=listener.run, kwargs={"until_finished": until_finished}, daemon=True)
        thread.start()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=certs.client_context()))

        async def stop() -> None:
            await session.close()
            listener.interrupt()
            await asyncio.to_thread(thread.join, 30)
            assert not thread.is_alive()

        cleanups.append(stop)
        return Running(server, f"https://localhost:{listener.port}", volume, session, listener, certs)

    yield run
    for stop in cleanups:
        await stop()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "disk.raw"
    return path, write_pattern_raw(path, 16 * MiB)
