"""Hostile and broken inputs for the importer: HTML, damaged or malicious qcow2, decompression bombs, evil tars."""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard

# Where the evil tars try to write: a tree outside any volume that tests can check stays absent.
ESCAPE_DIR = "/tmp/pycdi-tar-escape"
ABSURD_VIRTUAL_SIZE = 1 << 50  # 1 PiB, in a qcow2 file of a few MiB
QCOW2_CLUSTER_BITS_OFFSET = 20  # big-endian u32 in the qcow2 header

# name -> (file name, qemu-img's format of the content, compression, how it is bad)
BAD: dict[str, tuple[str, str, str | None, str]] = {
    "html": ("login.html", "raw", None, "an HTML page instead of an image"),
    "qcow2-truncated": ("truncated.qcow2", "qcow2", None,
                        "a qcow2 cut to 40% of its length; qemu-img 7.2 still converts it (reads zeros past EOF), "
                        "`qemu-img check` reports the clusters beyond the end"),
    "qcow2-corrupt-header": ("corrupt-header.qcow2", "qcow2", None,
                             "a qcow2 whose cluster_bits is 63: qemu-img cannot open it"),
    "qcow2-absurd-size": ("absurd-size.qcow2", "qcow2", None,
                          f"a valid qcow2 of a few MiB that claims {ABSURD_VIRTUAL_SIZE} bytes (1 PiB)"),
    "qcow2-backing-file": ("backing-file.qcow2", "qcow2", None,
                           "a qcow2 overlay whose backing file is an absolute host path (the corpus raw image)"),
    "qcow2-data-file": ("data-file.qcow2", "qcow2", None,
                        "a qcow2 whose data lives in an external data file at an absolute host path"),
    "bomb.gz": ("bomb.gz", "raw", "gz", "gzip of ~1 MiB expanding to 1 GiB of zeros"),
    "bomb.zst": ("bomb.zst", "raw", "zst", "zstd of a few KiB expanding to 1 GiB of zeros"),
    "tar-dotdot": ("dotdot.tar", "tar", None, "members named ../escape.txt and sub/../../escape2.txt"),
    "tar-absolute": ("absolute.tar", "tar", None, f"a member named {ESCAPE_DIR}/absolute.txt"),
    "tar-symlink-out": ("symlink-out.tar", "tar", None,
                        f"symlinks to {ESCAPE_DIR} and ../../.., then files written through them"),
    "tar-hardlink-out": ("hardlink-out.tar", "tar", None, "hard links to /etc/passwd and ../../etc/hosts"),
}

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Example Downloads</title></head>
<body><h1>Please sign in</h1>
<form method="post" action="/login"><input name="user"><input name="password" type="password">
<button>Sign in</button></form>
<p>The file you asked for is available to registered users only.</p>
</body></html>
""" * 8


def build(name: str, dest: Path, source: Callable[[str], Path], bomb_size: int) -> None:
    """Write bad input `name` to `dest`; `source(name)` gives good corpus files to derive it from."""
    if name == "html":
        dest.write_bytes(HTML_PAGE)
    elif name == "qcow2-truncated":
        data = source("qcow2").read_bytes()
        dest.write_bytes(data[: len(data) * 2 // 5])
    elif name == "qcow2-corrupt-header":
        header = bytearray(source("qcow2").read_bytes())
        header[QCOW2_CLUSTER_BITS_OFFSET:QCOW2_CLUSTER_BITS_OFFSET + 4] = struct.pack(">I", 63)
        dest.write_bytes(bytes(header))
    elif name == "qcow2-absurd-size":
        # 2 MiB clusters keep the L1 table (and so the file) small for a 1 PiB disk.
        _qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", str(dest), str(ABSURD_VIRTUAL_SIZE))
    elif name == "qcow2-backing-file":
        raw = source("raw")
        _qemu_img("create", "-q", "-f", "qcow2", "-b", str(raw.resolve()), "-F", "raw", str(dest))
    elif name == "qcow2-data-file":
        external = dest.with_name("data-file.qcow2.data")
        _qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={external.resolve()},data_file_raw=on",
                  str(dest), str(source("raw").stat().st_size))
    elif name in ("bomb.gz", "bomb.zst"):
        write_bomb(dest, bomb_size, name.rpartition(".")[2])
    elif name.startswith("tar-"):
        _write_evil_tar(name, dest)
    else:
        raise KeyError(name)


def _qemu_img(*args: str) -> None:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"qemu-img {' '.join(args)}: {done.stderr.strip()}")


def write_bomb(dest: Path, expanded_size: int, compression: str = "gz") -> None:
    """`expanded_size` zero bytes, compressed, without spending the time to compress them all."""
    chunk = 1 << 20
    whole, rest = divmod(expanded_size, chunk)
    if compression == "gz":
        _write_gzip_bomb(dest, whole, rest, chunk)
    elif compression == "zst":
        # zstd compresses zeros at memory speed, so the honest way is fast enough.
        cctx = zstandard.ZstdCompressor(level=3)
        zeros = bytes(chunk)
        with open(dest, "wb") as f, cctx.stream_writer(f, size=expanded_size) as w:
            for _ in range(whole):
                w.write(zeros)
            w.write(bytes(rest))
    else:
        raise ValueError(f"no {compression!r} bomb; gz and zst are made")


def _write_gzip_bomb(dest: Path, whole: int, rest: int, chunk: int) -> None:
    # After Z_FULL_FLUSH a deflate stream's state is reset and byte-aligned, so every further chunk of zeros
    # compresses to the same bytes: compute them once and repeat them. The gzip wrapper (header, CRC-32,
    # length) is written here so the result is one ordinary single-member gzip stream.
    zeros = bytes(chunk)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    steady = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    assert steady == again, "deflate output of a repeated chunk after a full flush should repeat"
    crc = 0
    with open(dest, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # magic, deflate, no flags, mtime 0, max comp
        if whole:
            f.write(first)
            for _ in range(whole - 1):
                f.write(steady)
        for _ in range(whole):  # zlib's CRC-32 runs at GB/s, so this stays well under a second per GiB
            crc = zlib.crc32(zeros, crc)
        tail = zlib.compressobj(9, zlib.DEFLATED, -15)
        f.write(tail.compress(bytes(rest)) + tail.flush())
        if rest:
            crc = zlib.crc32(bytes(rest), crc)
        f.write(struct.pack("<II", crc, (whole * chunk + rest) & 0xFFFFFFFF))


def _write_evil_tar(name: str, dest: Path) -> None:
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        _add_file(tar, "innocent/readme.txt", b"a harmless file first, so the archive looks ordinary\n")
        if name == "tar-dotdot":
            _add_file(tar, "../escape.txt", b"written outside the volume through ..\n")
            _add_file(tar, "sub/../../escape2.txt", b"written outside the volume through sub/../..\n")
        elif name == "tar-absolute":
            _add_file(tar, f"{ESCAPE_DIR}/absolute.txt", b"written to an absolute path\n")
        elif name == "tar-symlink-out":
            _add_link(tar, "out-link", ESCAPE_DIR, tarfile.SYMTYPE)
            _add_file(tar, "out-link/via-symlink.txt", b"written through an absolute symlink\n")
            _add_link(tar, "out-rel", "../../..", tarfile.SYMTYPE)
            _add_file(tar, "out-rel/via-relative-symlink.txt", b"written through a relative symlink\n")
        elif name == "tar-hardlink-out":
            _add_link(tar, "passwd-copy", "/etc/passwd", tarfile.LNKTYPE)
            _add_link(tar, "hosts-copy", "../../etc/hosts", tarfile.LNKTYPE)
        else:
            raise KeyError(name)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, target, 0o777, 1_700_000_000
    tar.addfile(info)

