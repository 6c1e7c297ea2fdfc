"""The host-assisted clone stream between the two workers, over a real loopback socket: sparse images land
byte-identical with their holes, zero blocks are not sent, gaps on a device are zeroed, bad clients are refused;
the stream is TLS, a plaintext peer is refused and the source talks only to the target holding the clone's key."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from pycdi.datapath.clone import protocol as p
from pycdi.datapath.clone.certs import new_certificate
from pycdi.datapath.clone.source import SourceConfig, run
from pycdi.datapath.clone.target import TargetConfig, TargetResult, serve

SECRET = "s3cret"
MIB = 1 << 20
CERT, KEY = new_certificate()


def digest(path: Path, size: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = size if size is not None else os.fstat(f.fileno()).st_size
        while left > 0:
            chunk = f.read(min(MIB, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def sparse_image(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in (0, 3 * MIB + 12345, size - 4096):
            f.seek(offset)
            f.write(os.urandom(4096))
        f.seek(5 * MIB)
        f.write(bytes(2 * MIB))  # written zeros: data in the file, but nothing worth sending


class Target:
    def __init__(self, config: TargetConfig) -> None:
        self.port = 0
        self.result: TargetResult | None = None
        self.error: BaseException | None = None
        ready = threading.Event()

        def listening(port: int) -> None:
            self.port = port
            ready.set()

        def main() -> None:
            try:
                self.result = serve(config, listening)
            except BaseException as e:  # reported to the test
                self.error = e
                ready.set()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        ready.wait(10)

    def join(self) -> TargetResult:
        self.thread.join(30)
        assert self.error is None, self.error
        assert self.result is not None
        return self.result


def target_config(dest: Path, *, block: bool = False, content: str = "kubevirt", prealloc: bool = False
                  ) -> TargetConfig:
    return TargetConfig("127.0.0.1", 0, str(dest), block, content, SECRET, CERT, KEY, prealloc)


def source_config(port: int, src: Path, content: str = "kubevirt", secret: str = SECRET, cert: str = CERT
                  ) -> SourceConfig:
    return SourceConfig("127.0.0.1", port, str(src), content, secret, cert)


def clone_whole(target: Target, src: Path, dst: Path) -> None:
    """A proper source, after whatever the target was put through: the clone goes through, byte for byte."""
    run(source_config(target.port, src))
    target.join()
    assert digest(src) == digest(dst)


def test_sparse_image_is_copied_byte_for_byte_with_its_holes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    size = 16 * MIB
    sparse_image(src, size)
    target = Target(target_config(dst))
    seen: list[float] = []
    result = run(source_config(target.port, src), seen.append)
    done = target.join()
    assert done.size == size and dst.stat().st_size == size
    assert digest(src) == digest(dst)
    # Only the three random blocks travel (each within one 64 KiB zero-check block): the written zeros do not.
    assert result.sent <= 3 * 64 * 1024
    assert dst.stat().st_blocks * 512 < 1 * MIB
    assert seen[-1] == 100.0 and seen == sorted(seen)


def test_device_target_gaps_are_zeroed_and_the_tail_is_kept(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "device"
    sparse_image(src, 8 * MIB)
    with open(dst, "wb") as f:  # a Block volume standing as a file, full of stale bytes and larger
        f.write(b"\xaa" * 10 * MIB)
    target = Target(target_config(dst, block=True))
    run(source_config(target.port, src))
    target.join()
    assert dst.stat().st_size == 10 * MIB
    assert digest(src) == digest(dst, 8 * MIB)
    with open(dst, "rb") as f:
        f.seek(8 * MIB)
        assert f.read() == b"\xaa" * 2 * MIB


def test_source_larger_than_the_device_is_refused(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "device"
    sparse_image(src, 8 * MIB)
    dst.write_bytes(bytes(MIB))
    target = Target(target_config(dst, block=True))
    with pytest.raises(p.ProtocolError, match="does not fit the target device"):
        run(source_config(target.port, src))
    assert target.thread.is_alive()  # still waiting for a source that fits


def test_wrong_secret_is_refused_and_the_target_keeps_listening(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 4 * MIB)
    target = Target(target_config(dst))
    with pytest.raises(p.ProtocolError, match="authentication failed"):
        run(source_config(target.port, src, secret="wrong"))
    with socket.create_connection(("127.0.0.1", target.port)) as sock:  # not even a clone client
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    clone_whole(target, src, dst)


def test_preallocation_allocates_the_whole_image(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 8 * MIB)
    target = Target(target_config(dst, prealloc=True))
    run(source_config(target.port, src))
    assert target.join().preallocation_applied
    assert dst.stat().st_blocks * 512 >= 8 * MIB
    assert digest(src) == digest(dst)


def test_archive_tree_is_copied(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "a.txt").write_text("hello")
    (src / "sub" / "b.bin").write_bytes(os.urandom(3 * MIB))
    target = Target(target_config(dst, content="archive"))
    run(source_config(target.port, src, "archive"))
    target.join()
    assert (dst / "a.txt").read_text() == "hello"
    assert digest(dst / "sub" / "b.bin") == digest(src / "sub" / "b.bin")


def test_content_types_must_match(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "dst"
    sparse_image(src, MIB)
    dst.mkdir()
    target = Target(target_config(dst, content="archive"))
    with pytest.raises(p.ProtocolError, match="do not match"):
        run(source_config(target.port, src))


class Tap:
    """A TCP relay between the source and the target keeping every byte the source sent: what a network sees."""

    def __init__(self, target_port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.target_port = target_port
        self.seen = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.listener, self.listener.accept()[0] as client, \
                socket.create_connection(("127.0.0.1", self.target_port)) as server:
            back = threading.Thread(target=self._pipe, args=(server, client, None), daemon=True)
            back.start()
            self._pipe(client, server, self.seen)
            back.join(30)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, keep: bytearray | None) -> None:
        try:
            while data := src.recv(1 << 16):
                if keep is not None:
                    keep += data
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side closed first: the session is over


def test_the_stream_is_tls_and_carries_neither_the_secret_nor_the_data_in_clear(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 4 * MIB)
    target = Target(target_config(dst))
    tap = Tap(target.port)
    run(source_config(tap.port, src))
    target.join()
    tap.thread.join(30)
    assert digest(src) == digest(dst)
    wire = bytes(tap.seen)
    assert wire[0] == 0x16 and wire[1] == 3  # a TLS handshake record opens the connection
    with open(src, "rb") as f:
        block = f.read(4096)  # random bytes the image holds
    assert block in src.read_bytes() and block[:64] not in wire
    assert p.GREETING not in wire and SECRET.encode() not in wire


def test_a_plaintext_peer_is_refused_and_the_target_keeps_listening(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 4 * MIB)
    target = Target(target_config(dst))
    with socket.create_connection(("127.0.0.1", target.port)) as sock:  # the old plaintext protocol
        sock.sendall(p.GREETING + SECRET.encode() + b"\n" + p.Header("kubevirt", 4 * MIB).encode())
        sock.settimeout(10)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"OK")  # a TLS alert at most, then the connection closes
    assert not dst.exists() or dst.stat().st_size == 0
    clone_whole(target, src, dst)


def test_the_source_refuses_a_target_without_the_clones_certificate(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 4 * MIB)
    other_cert, other_key = new_certificate()
    impostor = Target(TargetConfig("127.0.0.1", 0, str(dst), False, "kubevirt", SECRET, other_cert, other_key))
    with pytest.raises(p.ProtocolError, match="TLS handshake .* certificate verify failed"):
        run(source_config(impostor.port, src))
    assert impostor.thread.is_alive() and not dst.exists()  # nothing reached it, not even the secret
    # A source pinned to another certificate is refused as well, before it could authenticate.
    target = Target(target_config(dst))
    with pytest.raises(p.ProtocolError, match="TLS handshake"):
        run(source_config(target.port, src, cert=other_cert))
    clone_whole(target, src, dst)
