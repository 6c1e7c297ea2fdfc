"""A corpus of real disk images (ext4 from real data, every qemu-img format and compression), built lazily."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import images_bad

MiB = 1 << 20
DEFAULT_VIRTUAL_SIZE = 64 * MiB
DEFAULT_DATA_SIZE = 4 * MiB
DEFAULT_SEED = 4
# Fixed identity and clock so the same spec gives the same bytes on every run (E2FSPROGS_FAKE_TIME is honoured
# by mke2fs; the files' own times are set by us).
FS_UUID = "c0ffee00-4d1c-4a11-9e5e-000000000004"
FAKE_TIME = 1_700_000_000

# name -> (file suffix, qemu-img's name of the format). An ISO is a raw image to qemu-img (and to CDI).
FORMATS: dict[str, tuple[str, str]] = {
    "raw": ("img", "raw"), "qcow2": ("qcow2", "qcow2"), "vmdk": ("vmdk", "vmdk"), "vdi": ("vdi", "vdi"),
    "vhd": ("vhd", "vpc"), "vhdx": ("vhdx", "vhdx"), "iso": ("iso", "raw"),
}
COMPRESSIONS = ("gz", "xz", "zst")
BAD_NAMES = tuple(images_bad.BAD)
DISK_NAMES = tuple(f + (f".{c}" if c else "") for f in FORMATS for c in (None, *COMPRESSIONS))
ARCHIVE_NAMES = ("archive.tar",) + tuple(f"archive.tar.{c}" for c in COMPRESSIONS)
DEFAULT_BOMB_SIZE = 1 << 30


class Unavailable(Exception):
    """This machine lacks a tool to build the entry; the message names it."""


@dataclass(frozen=True)
class Entry:
    """One corpus file and what an import of it must give (good) or how it is bad."""

    name: str
    filename: str
    format: str  # qemu-img's format name of the content once decompressed
    compression: str | None
    good: bool
    what: str


def sha256_file(path: Path, length: int | None = None) -> str:
    """SHA-256 of a file, or of its first `length` bytes (an import to a Filesystem volume may be longer)."""
    h = hashlib.sha256()
    left = os.path.getsize(path) if length is None else length
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(4 * MiB, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, raising with its stderr so a failed build says why."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def make_data_dir(target: Path, data_size: int, seed: int) -> None:
    """Deterministic varied files: about half incompressible, ~40% text, the rest zeros, small files, links."""
    rng = random.Random(seed)
    (target / "random").mkdir(parents=True)
    (target / "text" / "deeper").mkdir(parents=True)
    (target / "empty-dir").mkdir()
    random_left = data_size // 2
    i = 0
    while random_left > 0:  # files of 64 KiB .. 8 MiB so big corpora do not make one huge file
        n = min(random_left, rng.choice((64 << 10, 1 * MiB, 8 * MiB)))
        (target / "random" / f"blob-{i:04d}.bin").write_bytes(rng.randbytes(n))
        random_left, i = random_left - n, i + 1
    words = ["qemu", "cluster", "volume", "import", "sector", "kubevirt", "disk", "sparse", "header", "the",
             "a", "of", "and", "to", "stream", "checksum", "format", "node", "block", "image"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) for _ in range(4096)]
    text_left = data_size * 2 // 5
    i = 0
    while text_left > 0:
        rng.shuffle(lines)
        block = ("\n".join(lines) + "\n").encode()[: min(text_left, MiB)]
        (target / "text" / ("deeper" if i % 3 == 2 else "") / f"chapter-{i:04d}.txt").write_bytes(block)
        text_left, i = text_left - len(block), i + 1
    with open(target / "zeros.bin", "wb") as f:
        f.write(bytes(data_size // 10))
    (target / "empty.txt").write_bytes(b"")
    (target / "README").write_text(f"pycdi test corpus, seed {seed}, {data_size} bytes of data\n")
    (target / "latest").symlink_to("text/chapter-0000.txt")  # a link that stays inside the tree
    pin_times(target)


def pin_times(target: Path) -> None:
    """Every access and modification time in the tree set to FAKE_TIME: again before each image is made from
    it, since reading a file moves its access time (relatime: it is not newer than the modification time), and
    mkfs and mkisofs record it."""
    for root, dirs, files in os.walk(target, topdown=False):
        for name in files + dirs:
            os.utime(Path(root) / name, (FAKE_TIME, FAKE_TIME), follow_symlinks=False)
    os.utime(target, (FAKE_TIME, FAKE_TIME))


def _compress(src: Path, dest: Path, kind: str) -> None:
    if kind == "gz":
        tool = ["pigz", "-n", "-6", "-c"] if shutil.which("pigz") else ["gzip", "-n", "-6", "-c"]
    elif kind == "xz":
        tool = ["xz", "-T0", "-3", "-c"]  # -3: a third of -6's time, for a few % in size
    elif kind == "zst":
        tool = ["zstd", "-q", "-T0", "-3", "-c"]
    else:
        raise ValueError(f"unknown compression {kind!r}")
    if shutil.which(tool[0]) is None:
        raise Unavailable(f"{tool[0]} is not installed (scripts/setup.sh installs it)")
    with open(dest, "wb") as out:
        subprocess.run([*tool, str(src)], stdout=out, stderr=subprocess.PIPE, check=True, timeout=600)


def _debugfs_time(epoch: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def _split(name: str) -> tuple[str, str | None]:
    base, _, ext = name.rpartition(".")
    if base and ext in COMPRESSIONS:
        return base, ext
    return name, None


class Corpus:
    """Images under `root`, each built on first use (once, even across pytest-xdist workers: file locks)."""

    def __init__(self, root: Path, virtual_size: int = DEFAULT_VIRTUAL_SIZE, data_size: int = DEFAULT_DATA_SIZE,
                 seed: int = DEFAULT_SEED) -> None:
        self.root = Path(root) / f"corpus-v{virtual_size}-d{data_size}-s{seed}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.virtual_size = virtual_size
        self.data_size = data_size
        self.seed = seed

    # --- the listing

    def names(self, good: bool | None = None) -> list[str]:
        """Every name `path` accepts (good images, archives, bad inputs), optionally only good or bad ones."""
        out = list(DISK_NAMES + ARCHIVE_NAMES)
        if good is True:
            return out
        return list(BAD_NAMES) if good is False else out + list(BAD_NAMES)

    def entry(self, name: str) -> Entry:
        if name in BAD_NAMES:
            filename, fmt, comp, what = images_bad.BAD[name]
            return Entry(name, filename, fmt, comp, False, what)
        base, comp = _split(name)
        suffix = f".{comp}" if comp else ""
        if base in FORMATS:
            return Entry(name, f"disk.{FORMATS[base][0]}{suffix}", FORMATS[base][1], comp, True,
                         f"ext4 filesystem as {base}" + (f", {comp} compressed" if comp else ""))
        if base == "archive.tar":
            return Entry(name, f"archive.tar{suffix}", "tar", comp, True, "tar of the data files")
        raise KeyError(f"no corpus entry {name!r}; known: {', '.join(self.names())}")

    def listing(self) -> list[Entry]:
        return [self.entry(n) for n in self.names()]

    # --- what imports must reproduce

    @property
    def sha256_raw(self) -> str:
        """Checksum of the raw image: what importing any disk format (other than iso) must give."""
        return self._digest("raw")

    def expected_sha256(self, name: str) -> str:
        """What importing `name` must give: the raw image's checksum; for an ISO, the ISO file's own."""
        return self._digest("iso" if _split(name)[0] == "iso" else "raw")

    def expected_size(self, name: str) -> int:
        """The virtual size qemu-img reports for `name` once decompressed."""
        return self.path("iso").stat().st_size if _split(name)[0] == "iso" else self.virtual_size

    @property
    def data_dir(self) -> Path:
        """The files the filesystem (and the archive) hold."""
        return self.path("data")

    def data_manifest(self) -> dict[str, str]:
        """Relative path -> sha256 of each regular file (links and dirs left out), to check an extraction."""
        out: dict[str, str] = {}
        for p in sorted(self.data_dir.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(self.data_dir))] = sha256_file(p)
        return out

    def _digest(self, base: str) -> str:
        sums = self.path(f"{base}.sha256")
        return sums.read_text().strip()

    # --- building

    def path(self, name: str) -> Path:
        """The file for `name`, built now if it is not there yet."""
        if name == "data":
            return self._build("data", self.root / "data", lambda p: make_data_dir(p, self.data_size, self.seed))
        if name.endswith(".sha256"):
            src = self.path(name.removesuffix(".sha256"))
            return self._build(name, self.root / name, lambda p: _write_text(p, sha256_file(src) + "\n"))
        if name in BAD_NAMES:
            return self._build(name, self.root / images_bad.BAD[name][0],
                               lambda p: images_bad.build(name, p, self.path, DEFAULT_BOMB_SIZE))
        e = self.entry(name)
        return self._build(name, self.root / e.filename, lambda p: self._make(name, p))

    def bomb(self, expanded_size: int, compression: str = "gz") -> Path:
        """A small compressed file that expands to `expanded_size` bytes of zeros."""
        dest = self.root / f"bomb-{expanded_size}.{compression}"
        return self._build(dest.name, dest, lambda p: images_bad.write_bomb(p, expanded_size, compression))

    def build_all(self, compressed: bool = True) -> list[Entry]:
        """Build every entry (for a benchmark directory); entries whose tool is missing are left out."""
        built = []
        for e in self.listing():
            if e.compression and not compressed:
                continue
            try:
                self.path(e.name)
                built.append(e)
            except Unavailable:
                pass
        return built

    def _make(self, name: str, dest: Path) -> None:
        base, comp = _split(name)
        if comp:
            _compress(self.path(base), dest, comp)
        elif base == "raw":
            self._make_raw(dest)
        elif base == "iso":
            self._make_iso(dest)
        elif base == "archive.tar":
            self._make_archive(dest)
        elif base == "vhd":
            # force_size keeps the exact virtual size instead of rounding it to a CHS geometry.
            run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
                 str(self.path("raw")), str(dest)])
        else:
            run(["qemu-img", "convert", "-q", "-f", "raw", "-O", FORMATS[base][1], str(self.path("raw")), str(dest)])

    def _make_raw(self, dest: Path) -> None:
        with open(dest, "wb") as f:
            f.truncate(self.virtual_size)  # sparse: mkfs writes only metadata and file data
        env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(FAKE_TIME)}
        run(["mkfs.ext4", "-q", "-F", "-L", "pycdi-corpus", "-U", FS_UUID,
             "-E", f"hash_seed={FS_UUID},root_owner=0:0", "-d", str(self.data_dir), str(dest)], env=env)
        # mkfs copies each file's ctime, which no one can set on the source, and its atime, which readers of the
        # tree (another image being made from it) move; fix both in the image so the same spec gives the same
        # bytes on every run.
        stamp = _debugfs_time(FAKE_TIME)
        script = dest.with_name(dest.name + ".debugfs")
        paths = ["/"] + ["/" + str(p.relative_to(self.data_dir)) for p in sorted(self.data_dir.rglob("*"))]
        script.write_text("".join(f'sif "{p}" {field} {stamp}\nsif "{p}" {field}_extra 0\n'
                                  for p in paths for field in ("ctime", "atime")))
        run(["debugfs", "-w", "-f", str(script), str(dest)], env=env)
        script.unlink()

    def _make_iso(self, dest: Path) -> None:
        pin_times(self.data_dir)
        if shutil.which("xorriso"):
            run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "PYCDI_CORPUS",
                 "--modification-date=2023111422132000", "-o", str(dest), str(self.data_dir)])
        elif shutil.which("genisoimage"):
            run(["genisoimage", "-quiet", "-R", "-J", "-V", "PYCDI_CORPUS", "-o", str(dest), str(self.data_dir)])
        else:
            raise Unavailable("neither xorriso nor genisoimage is installed (scripts/setup.sh installs xorriso)")

    def _make_archive(self, dest: Path) -> None:
        with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
            for p in sorted(self.data_dir.rglob("*")):
                info = tar.gettarinfo(str(p), arcname=str(p.relative_to(self.data_dir)))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if info.isreg():
                    with open(p, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)

    def _build(self, key: str, dest: Path, make: Callable[[Path], None]) -> Path:
        if dest.exists():
            return dest
        with self._lock(key):
            if dest.exists():  # another worker built it while we waited
                return dest
            partial = dest.with_name(f".{dest.name}.partial")
            if partial.is_dir():
                shutil.rmtree(partial)
            else:
                partial.unlink(missing_ok=True)
            make(partial)
            os.replace(partial, dest)  # only a complete file ever carries the real name
        return dest

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        with open(self.root / f".lock-{key}", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def corpus(tmp_root: Path, virtual_size: int = DEFAULT_VIRTUAL_SIZE, data_size: int = DEFAULT_DATA_SIZE,
           seed: int = DEFAULT_SEED) -> Corpus:
    """The corpus for this spec under `tmp_root`; nothing is built until a path is asked for."""
    return Corpus(tmp_root, virtual_size, data_size, seed)
