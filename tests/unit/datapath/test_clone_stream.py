"""The host-assisted clone stream between the two workers, over a real loopback socket: sparse images land
byte-identical with their holes, zero blocks are not sent, gaps on a device are zeroed, bad clients are refused."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from pycdi.datapath.clone import protocol as p
from pycdi.datapath.clone.source import SourceConfig, run
from pycdi.datapath.clone.target import TargetConfig, TargetResult, serve

SECRET = "s3cret"
MIB = 1 << 20


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
    return TargetConfig("127.0.0.1", 0, str(dest), block, content, SECRET, prealloc)


def test_sparse_image_is_copied_byte_for_byte_with_its_holes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    size = 16 * MIB
    sparse_image(src, size)
    target = Target(target_config(dst))
    seen: list[float] = []
    result = run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET), seen.append)
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
    run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET))
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
        run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET))
    assert target.thread.is_alive()  # still waiting for a source that fits


def test_wrong_secret_is_refused_and_the_target_keeps_listening(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 4 * MIB)
    target = Target(target_config(dst))
    with pytest.raises(p.ProtocolError, match="authentication failed"):
        run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", "wrong"))
    with socket.create_connection(("127.0.0.1", target.port)) as sock:  # not even a clone client
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET))
    target.join()
    assert digest(src) == digest(dst)


def test_preallocation_allocates_the_whole_image(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    sparse_image(src, 8 * MIB)
    target = Target(target_config(dst, prealloc=True))
    run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET))
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
    run(SourceConfig("127.0.0.1", target.port, str(src), "archive", SECRET))
    target.join()
    assert (dst / "a.txt").read_text() == "hello"
    assert digest(dst / "sub" / "b.bin") == digest(src / "sub" / "b.bin")


def test_content_types_must_match(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "dst"
    sparse_image(src, MIB)
    dst.mkdir()
    target = Target(target_config(dst, content="archive"))
    with pytest.raises(p.ProtocolError, match="do not match"):
        run(SourceConfig("127.0.0.1", target.port, str(src), "kubevirt", SECRET))
