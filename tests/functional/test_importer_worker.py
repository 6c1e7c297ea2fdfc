"""`pycdi importer` as a subprocess against a real nginx: every path, the bad inputs, and flat memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from pycdi.api.sizes import usable_space
from tests.support.nginx import Credentials, NginxServer, nginx_server

MiB = 1 << 20
IMAGE_SIZE = 16 * MiB
PVC = "64Mi"
USABLE = usable_space(0.06, 64 * MiB)  # upstream's GetUsableSpace with the default 6% overhead: 60 MiB


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def pattern_raw(path: Path) -> bytes:
    content = bytearray(IMAGE_SIZE)
    for i, off in enumerate((0, 5 * MiB + 4096, IMAGE_SIZE - MiB)):
        content[off : off + 300_000] = bytes((i * 7 + j) % 253 for j in range(300_000))
    path.write_bytes(bytes(content))
    return bytes(content)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("www")
    raw = pattern_raw(root / "disk.img")
    (root / "disk.img.gz").write_bytes(gzip.compress(raw, 1))
    (root / "disk.img.xz").write_bytes(lzma.compress(raw, preset=0))
    (root / "disk.img.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    for fmt, name in (("qcow2", "disk.qcow2"), ("vmdk", "disk.vmdk"), ("vpc", "disk.vhd")):
        qemu_img("convert", "-f", "raw", "-O", fmt, str(root / "disk.img"), str(root / name))
    (root / "disk.qcow2.gz").write_bytes(gzip.compress((root / "disk.qcow2").read_bytes(), 1))
    whole = (root / "disk.qcow2").read_bytes()
    (root / "truncated.qcow2").write_bytes(whole[: len(whole) // 2])
    qemu_img("create", "-f", "qcow2", str(root / "huge.qcow2"), "1T")
    qemu_img("create", "-f", "qcow2", "-b", "disk.qcow2", "-F", "qcow2", str(root / "backing.qcow2"))
    # The data file lives in the test's own dir: qemu-img create truncates whatever data_file names.
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={root / 'datafile.data'}", str(root / "datafile.qcow2"), "8M")
    (root / "page.img").write_text("<!DOCTYPE html><html><body>Sign in</body></html>\n")
    (root / "page.html").write_text("<!DOCTYPE html><html><body>Sign in</body></html>\n")
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    (root / "bomb.img.gz").write_bytes(b"".join(bomb.compress(bytes(MiB)) for _ in range(256)) + bomb.flush())
    (root / "good.tar.gz").write_bytes(gzip.compress(_tar({"a/b.txt": b"hello", "c.txt": b"world"})))
    (root / "evil.tar").write_bytes(_tar({"../escape.txt": b"x"}))
    return root, raw


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def web(corpus: tuple[Path, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with nginx_server(tmp_path_factory.mktemp("nginx"), corpus[0]) as server:
        yield server


@pytest.fixture(scope="module")
def web_noranges(corpus: tuple[Path, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    with nginx_server(tmp_path_factory.mktemp("nginx-nr"), corpus[0], ranges=False) as server:
        yield server


@dataclass
class Outcome:
    code: int
    message: dict[str, object]
    volume: Path
    stderr: str
    progress: str


@pytest.fixture
def importer(tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(url: str, *, scratch: bool = True, block: bool = False, **env: str) -> Outcome:
        volume = tmp_path / "volume"
        volume.mkdir(exist_ok=True)
        mapping = {"/data": str(volume), "/dev/termination-log": str(tmp_path / "termination"),
                   "/progress": str(tmp_path / "progress")}  # fmt: skip
        if scratch:
            (tmp_path / "scratch").mkdir(exist_ok=True)
            mapping["/scratch"] = str(tmp_path / "scratch")
        if block:
            mapping["/dev/cdi-block-volume"] = str(tmp_path / "device")
        full = {
            "PATH": os.environ["PATH"], "PYCDI_PATH_MAP": json.dumps(mapping), "IMPORTER_SOURCE": "http",
            "IMPORTER_ENDPOINT": url, "IMPORTER_IMAGE_SIZE": PVC, "OWNER_UID": "uid-1",
            "IMPORTER_VOLUME_MODE": "Block" if block else "Filesystem", "PYCDI_PROGRESS_FILE": "/progress", **env,
        }  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "pycdi", "importer"], env=full, capture_output=True, timeout=120)
        term = tmp_path / "termination"
        progress = tmp_path / "progress"
        return Outcome(
            proc.returncode, json.loads(term.read_text()) if term.exists() else {}, volume,
            proc.stderr.decode(errors="replace"), progress.read_text().strip() if progress.exists() else "",
        )  # fmt: skip

    return run


def assert_disk(volume: Path, raw: bytes) -> None:
    disk = volume / "disk.img"
    st = disk.stat()
    assert st.st_size == USABLE
    assert oct(st.st_mode & 0o777) == "0o660"
    with open(disk, "rb") as f:
        assert hashlib.sha256(f.read(len(raw))).digest() == hashlib.sha256(raw).digest()
        assert f.read() == bytes(USABLE - len(raw))
    # Zero blocks became holes: three 300 KB data runs, not the 60 MiB file.
    assert st.st_blocks * 512 < 3 * MiB


@pytest.mark.parametrize("name", ["disk.img", "disk.img.gz", "disk.img.xz", "disk.img.zst", "disk.qcow2",
                                  "disk.vmdk", "disk.vhd", "disk.qcow2.gz"])  # fmt: skip
def test_formats_to_filesystem(importer, web: NginxServer, corpus: tuple[Path, bytes], name: str) -> None:  # type: ignore[no-untyped-def]
    out = importer(web.url(name))
    assert out.code == 0, out.stderr
    assert out.message == {"message": "Import Complete", "preallocationApplied": False}
    assert_disk(out.volume, corpus[1])
    assert out.progress == "100.00"
    assert not any((out.volume.parent / "scratch").iterdir())  # scratch is cleaned up


def test_qcow2_without_ranges_goes_through_scratch(importer, web_noranges: NginxServer, corpus) -> None:  # type: ignore[no-untyped-def]
    out = importer(web_noranges.url("disk.qcow2"))
    assert out.code == 0, out.stderr
    assert_disk(out.volume, corpus[1])
    assert "(scratch)" in out.stderr


def test_qcow2_with_ranges_needs_no_scratch(importer, web: NginxServer, corpus) -> None:  # type: ignore[no-untyped-def]
    # nbdkit forced: on a loaded machine even loopback can exceed the round trip limit and the importer would
    # (rightly) ask for scratch; the choice by round trip is tested with a delaying nginx in test_importer_spool.
    out = importer(web.url("disk.qcow2"), scratch=False, PYCDI_NBDKIT="always")
    assert out.code == 0, out.stderr
    assert "(nbdkit)" in out.stderr
    assert_disk(out.volume, corpus[1])


def test_scratch_required_is_reported(importer, web: NginxServer) -> None:  # type: ignore[no-untyped-def]
    out = importer(web.url("disk.qcow2.gz"), scratch=False)
    assert out.code == 0
    assert out.message == {"scratchSpaceRequired": True, "message": "scratch space required and none found"}
    assert not (out.volume / "disk.img").exists()


def test_block_target_overwrites_stale_data(importer, web: NginxServer, corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    device = tmp_path / "device"
    device.write_bytes(b"\xff" * (32 * MiB))
    for name in ("disk.img.zst", "disk.qcow2"):
        out = importer(web.url(name), block=True)
        assert out.code == 0, out.stderr
        data = device.read_bytes()
        assert len(data) == 32 * MiB
        assert data[:IMAGE_SIZE] == corpus[1]
        device.write_bytes(b"\xff" * (32 * MiB))


def test_checksum(importer, web: NginxServer, corpus) -> None:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256((corpus[0] / "disk.img.gz").read_bytes()).hexdigest()
    assert importer(web.url("disk.img.gz"), IMPORTER_CHECKSUM=f"sha256:{digest}").code == 0
    out = importer(web.url("disk.img.gz"), IMPORTER_CHECKSUM="sha256:" + "0" * 64)
    assert out.code == 1
    assert f"checksum mismatch: expected sha256:{'0' * 64}, got sha256:{digest}" in str(out.message["message"])
    assert not (out.volume / "disk.img").exists()


@pytest.mark.parametrize(
    ("name", "expected", "transient"),
    [
        ("page.html", "returned an HTML page (Content-Type: text/html) instead of a disk image", False),
        ("page.img", "page.img is an HTML or XML document, not a disk image", False),
        ("missing.img", "expected status code 200, got 404", False),
        ("huge.qcow2", f"virtual image size {1 << 40} is larger than the reported available storage {USABLE}. "
                       "A larger PVC is required", False),
        ("backing.qcow2", "is invalid because it has backing file disk.qcow2", False),
        ("datafile.qcow2", "is invalid because it has an external data file", False),
        ("truncated.qcow2", "truncated.qcow2 is corrupt or truncated: ERROR", False),
        ("bomb.img.gz", f"image is larger than the reported available storage {USABLE}", False),
    ],
)
def test_bad_inputs(importer, web: NginxServer, tmp_path: Path, name: str, expected: str, transient: bool) -> None:  # type: ignore[no-untyped-def]
    before = sorted(p.name for p in tmp_path.iterdir())
    out = importer(web.url(name))
    assert out.code == 1, out.stderr
    assert expected in str(out.message["message"]), out.message
    assert str(out.message["message"]).startswith("Unable to process data: ")
    assert out.message["transient"] is transient
    assert not (out.volume / "disk.img").exists()
    # Nothing written anywhere but the worker's own mounts, and those hold nothing afterwards.
    assert {p.name for p in tmp_path.iterdir()} <= {*before, "volume", "scratch", "termination", "progress"}
    assert not any(out.volume.iterdir()) and not any((tmp_path / "scratch").iterdir())


def test_server_error_is_transient(importer, web: NginxServer) -> None:  # type: ignore[no-untyped-def]
    out = importer(web.status_url(503))
    assert out.code == 1
    assert "got 503" in str(out.message["message"]) and out.message["transient"] is True


def test_archive_content(importer, web: NginxServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = importer(web.url("good.tar.gz"), IMPORTER_CONTENTTYPE="archive")
    assert out.code == 0, out.stderr
    assert (out.volume / "a/b.txt").read_bytes() == b"hello" and (out.volume / "c.txt").read_bytes() == b"world"
    out = importer(web.url("evil.tar"), IMPORTER_CONTENTTYPE="archive")
    assert out.code == 1
    assert "archive member '../escape.txt' escapes the volume with '..'" in str(out.message["message"])
    assert not (tmp_path / "escape.txt").exists()


def test_blank_is_sparse(importer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = importer("", IMPORTER_SOURCE="none", IMPORTER_IMAGE_SIZE="1Gi")
    assert out.code == 0, out.stderr
    disk = out.volume / "disk.img"
    assert disk.stat().st_size == usable_space(0.06, 1 << 30)  # upstream's GetUsableSpace, default overhead
    assert disk.stat().st_blocks * 512 < MiB


def test_tls_and_basic_auth(importer, corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    creds = Credentials("user", "s3cret")
    with nginx_server(tmp_path / "nginx-tls", corpus[0], tls=True, auth=creds) as server:
        assert server.ca_pem is not None
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.pem").write_bytes(server.ca_pem)
        auth = {"IMPORTER_ACCESS_KEY_ID": "user", "IMPORTER_SECRET_KEY": "s3cret", "IMPORTER_CERT_DIR": "/certs"}
        mapping_env = {"IMPORTER_CERT_DIR": str(certs)}  # no /certs mapping: the host path is used as is
        for name in ("disk.img.gz", "disk.qcow2"):
            out = importer(server.url(name), **{**auth, **mapping_env})
            assert out.code == 0, (out.message, out.stderr)
        out = importer(server.url("disk.img"), **mapping_env)
        assert out.code == 1 and "got 401" in str(out.message["message"])
        out = importer(server.url("disk.img"), **auth)
        assert out.code == 1 and "TLS verification" in str(out.message["message"])


def test_memory_stays_flat_on_large_gzip(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    data = os.urandom(MiB)
    with open(root / "big.img.gz", "wb") as f:
        for i in range(1024):  # 1 GiB virtual, 16 MiB of incompressible data spread through it
            f.write(comp.compress(data if i % 64 == 0 else bytes(MiB)))
        f.write(comp.flush())
    volume = tmp_path / "volume"
    volume.mkdir()
    with nginx_server(tmp_path / "nginx", root) as server:
        env = {"PATH": os.environ["PATH"], "IMPORTER_SOURCE": "http", "IMPORTER_ENDPOINT": server.url("big.img.gz"),
               "IMPORTER_IMAGE_SIZE": "2Gi", "IMPORTER_VOLUME_MODE": "Filesystem",
               "PYCDI_PATH_MAP": json.dumps({"/data": str(volume), "/dev/termination-log": str(tmp_path / "t")})}
        # A wrapper whose only child is the importer: RUSAGE_CHILDREN is then the importer's own peak.
        wrapper = ("import resource, subprocess, sys; "
                   "rc = subprocess.run([sys.executable, '-m', 'pycdi', 'importer']).returncode; "
                   "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, timeout=300)
    rc, peak_kib = out.stdout.split()
    assert rc == "0", out.stderr
    assert int(peak_kib) < 150 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"
    disk = volume / "disk.img"
    assert disk.stat().st_blocks * 512 < 20 * MiB
