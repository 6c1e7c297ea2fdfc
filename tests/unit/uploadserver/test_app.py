"""The upload server's handling over real mutual TLS, with the real data path (qemu-img) into a temporary volume:
endpoints, the client certificate, one upload at a time, errors and retries; HTTP framing (chunked bodies,
100-continue, keep-alive)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from pycdi import unixsock
from pycdi.controllers.uploadpod.certs import new_ca
from tests.unit.datapath.conftest import qemu_img
from tests.unit.uploadserver.conftest import CLIENT, Certs, MiB, Running, Start, sha256


async def test_raw_upload_streams_into_disk_img_and_the_server_finishes(start: Start, raw: tuple[Path, bytes]
                                                                        ) -> None:
    up = await start()
    path, content = raw
    status, text = await up.post("/v1beta1/upload", path.read_bytes())
    assert (status, text) == (200, "")
    disk = up.volume / "disk.img"
    assert sha256(disk.read_bytes()[:len(content)]) == sha256(content)
    assert disk.stat().st_size == 64 * MiB  # grown to the volume's usable size
    assert up.server.finished.is_set() and up.server.done and up.server.result is not None
    assert up.server.result.path == "stream"
    # The upload is done: another one is a conflict.
    status, _ = await up.post("/v1beta1/upload", b"more")
    assert status == 409


async def test_endpoints_methods_and_healthz(start: Start, certs: Certs) -> None:
    up = await start()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=certs.client_context(None))) as anonymous:
        # Async support is probed with HEAD, without a client certificate (as upstream).
        for path in ("/v1beta1/upload-async", "/v1alpha1/upload-async", "/v1beta1/upload-form-async"):
            async with anonymous.head(up.base + path) as resp:
                assert resp.status == 200
        async with anonymous.get(up.base + "/healthz") as resp:
            assert (resp.status, await resp.text()) == (200, "OK")
    for method, path in (("GET", "/v1beta1/upload"), ("PUT", "/v1beta1/upload"), ("HEAD", "/v1beta1/upload"),
                         ("GET", "/v1beta1/upload-archive")):
        async with up.session.request(method, up.base + path) as resp:
            assert resp.status == 404, (method, path)
    async with up.session.post(up.base + "/v1beta1/elsewhere", data=b"x") as resp:
        assert resp.status == 404
    assert not up.server.uploading and not up.server.done


async def test_only_the_proxys_client_certificate_may_upload(start: Start, certs: Certs) -> None:
    up = await start()
    for ctx in (certs.client_context(None), certs.client_context("someone-else")):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as other:
            async with other.post(up.base + "/v1beta1/upload", data=b"data") as resp:
                assert resp.status == 401
    # A certificate from another CA does not even complete the handshake.
    stranger = certs.client_context(CLIENT, ca=new_ca("stranger"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=stranger)) as other:
        with pytest.raises(aiohttp.ClientError):
            async with other.post(up.base + "/v1beta1/upload", data=b"data"):
                pass
    assert not up.server.done and not (up.volume / "disk.img").exists()


async def test_a_second_concurrent_upload_is_refused_with_503(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start()
    path, content = raw
    data = path.read_bytes()
    hold = asyncio.Event()
    sent_first = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield data[:MiB]
        sent_first.set()
        await hold.wait()
        yield data[MiB:]

    first = asyncio.ensure_future(up.post("/v1beta1/upload", slow_body(), headers={"Content-Length": str(len(data))}))
    await sent_first.wait()
    assert await _until(up, lambda: up.server.uploading)
    assert await up.post("/v1beta1/upload", data) == (503, "another upload is in progress")
    hold.set()
    assert await first == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def _until(up: Running, check: Callable[[], bool], timeout: float = 10) -> bool:
    """Wait for a state the server reaches on its own threads."""
    return await asyncio.to_thread(up.server.wait_until, check, timeout)


async def test_qcow2_goes_through_scratch_and_async_answers_before_processing(
        start: Start, raw: tuple[Path, bytes], tmp_path: Path) -> None:
    up = await start()
    path, content = raw
    qcow2 = tmp_path / "disk.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(path), str(qcow2))
    status, _ = await up.post("/v1beta1/upload-async", qcow2.read_bytes())
    assert status == 200
    assert await asyncio.to_thread(up.server.finished.wait, 60)
    assert up.server.failure is None and up.server.result is not None
    assert up.server.result.path == "scratch"
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)
    assert not any(Path(up.server.config.scratch_dir or "").iterdir())  # scratch emptied


async def test_qcow2_without_scratch_space_is_a_server_error(start: Start, raw: tuple[Path, bytes],
                                                            tmp_path: Path) -> None:
    up = await start(scratch=False)
    qcow2 = tmp_path / "disk.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw[0]), str(qcow2))
    status, text = await up.post("/v1beta1/upload", qcow2.read_bytes())
    assert status == 500
    assert text == "Saving stream failed: scratch space required and none found"


async def test_too_large_is_400_with_upstreams_message_and_the_pod_takes_another_try(
        start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start(size=8 * MiB)
    path, content = raw
    status, text = await up.post("/v1beta1/upload", path.read_bytes())
    assert status == 400
    assert text.startswith("Saving stream failed: effective image size is larger than the reported available "
                           "storage: ")
    assert "8388608" in text  # the numbers are stated
    assert not (up.volume / "disk.img").exists()  # the partial image is gone
    assert not up.server.done and up.server.idle.is_set()
    small = content[:4 * MiB]
    assert await up.post("/v1beta1/upload", small) == (200, "")
    assert (up.volume / "disk.img").read_bytes()[:len(small)] == small


async def test_invalid_image_is_400(start: Start, tmp_path: Path, raw: tuple[Path, bytes]) -> None:
    up = await start()
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "16M")
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(overlay))
    status, text = await up.post("/v1beta1/upload", overlay.read_bytes())
    assert status == 400
    assert text.startswith("Saving stream failed: ") and "backing file" in text
    status, text = await up.post("/v1beta1/upload", b"\xfd7zXZ\x00" + b"\x01" * 100)
    assert status == 400 and "xz" in text


async def test_form_upload_reads_the_file_field(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start()
    path, content = raw
    form = aiohttp.FormData()
    form.add_field("note", "ignored")
    form.add_field("file", io.BytesIO(path.read_bytes()), filename="disk.raw",
                   content_type="application/octet-stream")
    assert await up.post("/v1beta1/upload-form", form) == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_form_without_a_file_field_is_400(start: Start) -> None:
    up = await start()
    form = aiohttp.FormData()
    form.add_field("image", io.BytesIO(b"data"), filename="x")
    status, text = await up.post("/v1alpha1/upload-form", form)
    assert status == 400 and "'file'" in text
    status, text = await up.post("/v1beta1/upload-form", b"not a form",
                                 headers={"Content-Type": "application/octet-stream"})
    assert status == 400 and text.startswith("Saving stream failed: ")


async def test_archive_upload_extracts_into_the_volume(start: Start) -> None:
    up = await start()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a.txt", b"alpha"), ("dir/b.bin", bytes(range(256)) * 100)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert await up.post("/v1beta1/upload-archive", buf.getvalue()) == (200, "")
    assert (up.volume / "a.txt").read_bytes() == b"alpha"
    assert (up.volume / "dir" / "b.bin").read_bytes() == bytes(range(256)) * 100
    assert up.server.result is not None and up.server.result.path == "archive"


async def test_archive_into_a_block_volume_is_refused(start: Start) -> None:
    up = await start(block=True)
    status, text = await up.post("/v1alpha1/upload-archive", b"\0" * 1024)
    assert status == 400 and "Filesystem" in text


async def test_block_volume_gets_the_bytes(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start(block=True, size=16 * MiB)
    path, content = raw
    assert await up.post("/v1beta1/upload", path.read_bytes()) == (200, "")
    assert sha256((up.volume / "block.img").read_bytes()) == sha256(content)


async def _half_an_upload(up: Running, certs: Certs, data: bytes) -> tuple[asyncio.StreamReader,
                                                                           asyncio.StreamWriter]:
    """A connection that sent the head and half the body of an upload, which the server has begun."""
    host, port = up.base.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=certs.client_context())
    writer.write(f"POST /v1beta1/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n\r\n".encode())
    writer.write(data[:len(data) // 2])
    await writer.drain()
    assert await _until(up, lambda: up.server.uploading)
    return reader, writer


async def test_an_interrupted_upload_is_discarded_and_can_be_retried(start: Start, certs: Certs,
                                                                     raw: tuple[Path, bytes]) -> None:
    up = await start()
    path, content = raw
    data = path.read_bytes()
    _, writer = await _half_an_upload(up, certs, data)
    writer.close()  # the client goes away mid-body
    assert await _until(up, lambda: not up.server.uploading, 30) and up.server.idle.is_set()
    assert not up.server.done
    assert not (up.volume / "disk.img").exists()
    assert await up.post("/v1beta1/upload", data) == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_a_stalled_client_is_cut_and_the_upload_can_be_retried(start: Start, certs: Certs,
                                                                       raw: tuple[Path, bytes]) -> None:
    up = await start(body_idle_timeout=0.5)
    path, content = raw
    data = path.read_bytes()
    reader, writer = await _half_an_upload(up, certs, data)
    # The client stays connected and sends nothing more: the server gives the upload up by itself.
    assert await _until(up, lambda: not up.server.uploading, 30) and up.server.idle.is_set()
    assert not up.server.done and not (up.volume / "disk.img").exists()
    answer = await reader.read()  # the answer, then the end of the connection
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"the upload was interrupted: The read operation "
                                                                    b"timed out")
    writer.close()
    assert await up.post("/v1beta1/upload", data) == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_the_local_socket_takes_uploads_without_a_certificate(start: Start, tmp_path: Path,
                                                                      raw: tuple[Path, bytes]) -> None:
    """Embedded clusters: the proxy on the same machine comes through a Unix socket in a private directory; the
    TCP port still wants the proxy's certificate. The path is longer than a socket address can hold."""
    private = tmp_path / ("d" * 120)
    private.mkdir(mode=0o700)
    path, content = raw
    up = await start(local_socket=str(private / "uploadserver.sock"))
    assert up.listener.local_socket is not None
    assert oct((private / "uploadserver.sock").stat().st_mode & 0o777) == "0o600"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            ssl=up.certs.client_context(common_name=None))) as anonymous:
        async with anonymous.post(up.base + "/v1beta1/upload", data=b"x") as resp:
            assert resp.status == 401
    with unixsock.address(str(private / "uploadserver.sock")) as name:
        connector = aiohttp.UnixConnector(path=name)
        async with aiohttp.ClientSession(connector=connector) as local, \
                local.post("http://localhost/v1beta1/upload", data=path.read_bytes()) as resp:
            assert (resp.status, await resp.text()) == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)
    assert await _until(up, lambda: up.server.done)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
async def test_the_local_socket_refuses_other_users(start: Start) -> None:
    """The second lock: even with the directory and the socket opened up, another user's connection is closed."""
    shared = Path(tempfile.mkdtemp(prefix="pycdi-test-"))  # outside pytest's private temporary tree
    try:
        await _refused_as_nobody(start, shared)
    finally:
        shutil.rmtree(shared)


async def _refused_as_nobody(start: Start, shared: Path) -> None:
    up = await start(local_socket=str(shared / "s.sock"))
    shared.chmod(0o777)
    (shared / "s.sock").chmod(0o666)
    # Connected (the socket lets anyone in now), then closed by the server without a word.
    probe = ("import socket\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             f"s.connect({str(shared / 's.sock')!r})\n"
             "s.settimeout(10)\n"
             "try:\n    print('closed' if s.recv(100) == b'' else 'answered')\n"
             "except ConnectionResetError:\n    print('closed')\n"
             "except TimeoutError:\n    print('left open')\n")
    done = await asyncio.to_thread(subprocess.run, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                    sys.executable, "-c", probe], capture_output=True, text=True,
                                   timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed"  # without an answer (or reset)
    assert not up.server.uploading and not up.server.done


async def test_a_chunked_body_streams_in(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start()
    path, content = raw
    data = path.read_bytes()

    async def unsized() -> AsyncIterator[bytes]:  # no Content-Length: the client sends it chunked
        for offset in range(0, len(data), 3 * MiB + 17):
            yield data[offset:offset + 3 * MiB + 17]

    assert await up.post("/v1beta1/upload", unsized()) == (200, "")
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_100_continue_and_keep_alive(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start()
    path, content = raw
    data = path.read_bytes()
    reader, writer = await up.connect()
    try:
        writer.write(f"POST /v1alpha1/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode())
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 0\r\n" in head
        assert b"Connection: close" not in head
        # The same connection takes the next request.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and await reader.readexactly(2) == b"OK"
    finally:
        writer.close()
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_a_malformed_request_is_400_and_the_connection_closes(start: Start) -> None:
    up = await start()
    for head in (b"NOT A REQUEST\r\n\r\n", b"POST /v1beta1/upload HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                 b"POST /v1beta1/upload HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"):
        reader, writer = await up.connect()
        try:
            writer.write(head)
            answer = await reader.read()  # to the end: the server closes
            assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), head
        finally:
            writer.close()
    # A broken chunked body is an interrupted upload: 400, and the server takes the next one.
    reader, writer = await up.connect()
    try:
        writer.write(b"POST /v1beta1/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndataXX\r\n")
        answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"the upload was interrupted" in answer
    finally:
        writer.close()
    assert not up.server.uploading and not up.server.done


async def test_async_form_answers_once_the_whole_body_is_in(start: Start, raw: tuple[Path, bytes],
                                                             tmp_path: Path) -> None:
    up = await start()
    path, content = raw
    qcow2 = tmp_path / "disk.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(path), str(qcow2))
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(qcow2.read_bytes()), filename="disk.qcow2",
                   content_type="application/octet-stream")
    form.add_field("after", "a part after the file is read past")
    assert await up.post("/v1beta1/upload-form-async", form) == (200, "")
    assert await asyncio.to_thread(up.server.finished.wait, 60)
    assert up.server.failure is None and up.server.result is not None and up.server.result.path == "scratch"
    assert sha256((up.volume / "disk.img").read_bytes()[:len(content)]) == sha256(content)


async def test_the_listener_stops_after_a_successful_upload(start: Start, raw: tuple[Path, bytes]) -> None:
    up = await start(until_finished=True)
    path, _ = raw
    assert await up.post("/v1beta1/upload", path.read_bytes()) == (200, "")
    assert up.server.done
    with pytest.raises(aiohttp.ClientError):  # nobody listens any more
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=up.certs.client_context())) as fresh:
            await fresh.get(up.base + "/healthz")
