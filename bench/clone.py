"""Clone benchmark: a 10 GiB volume file holding 1 GiB of data, reflinked on XFS and sparse-copied on ext4, vs cp."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.files import fsync_path
from tests.support.xfs import XfsUnavailable, xfs_filesystem

from pycdi.cluster.storage import copy_file
from pycdi.cluster.storage.fsinfo import allocated_bytes, filesystem_type, filesystem_used_bytes

GiB, MiB = 1 << 30, 1 << 20
VOLUME = 10 * GiB
DATA = 1 * GiB
CHUNK = 4 * MiB  # data is written in chunks spread evenly over the volume
RUNS = 3
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def make_source(path: Path) -> None:
    """A 10 GiB sparse file with 1 GiB of random data in 4 MiB chunks every 40 MiB, flushed to disk."""
    chunks = DATA // CHUNK
    stride = VOLUME // chunks
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, VOLUME)
        for i in range(chunks):
            os.pwrite(fd, os.urandom(CHUNK), i * stride)
        os.fsync(fd)
    finally:
        os.close(fd)


def settle() -> bool:
    """Same cache state before every timed run: flush dirty pages, then drop the page cache when allowed
    (root), so each copy reads a cold source. Returns whether the cache was dropped."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def ours(src: Path, dst: Path) -> None:
    copy_file(src, dst, sync=True)  # ends with fsync of the target


def cp(option: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        subprocess.run(["cp", option, str(src), str(dst)], check=True)
        fsync_path(dst)  # like for like: our copy's time includes its fsync

    return run


def duel(src: Path, workdir: Path, candidate: Callable[[Path, Path], None],
         baseline: Callable[[Path, Path], None]) -> tuple[float, float, float, float]:
    """Interleaved runs (AB, BA, AB), each on a fresh target removed afterwards. Returns the median candidate
    and baseline seconds, the median of the per-pair ratios (steadier than a ratio of medians on a noisy
    disk), and the allocated bytes of the last candidate target."""
    times: dict[str, list[float]] = {"ours": [], "cp": []}
    allocated = 0.0
    for i in range(RUNS):
        order = [("ours", candidate), ("cp", baseline)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            dst = workdir / f"clone-{name}.img"
            settle()
            start = time.perf_counter()
            fn(src, dst)
            times[name].append(time.perf_counter() - start)
            if name == "ours":
                allocated = float(allocated_bytes(dst))
            dst.unlink()
    ratio = statistics.median(a / b for a, b in zip(times["ours"], times["cp"], strict=True))
    return statistics.median(times["ours"]), statistics.median(times["cp"]), ratio, allocated


def reflink_part(base: Path, results: dict[str, float]) -> None:
    workdir = base / "xfs"
    workdir.mkdir()
    try:
        with xfs_filesystem(workdir, VOLUME + 4 * GiB) as mnt:
            src = mnt / "source.img"
            make_source(src)
            os.sync()
            used = filesystem_used_bytes(mnt)
            copy_file(src, mnt / "probe.img", sync=True)
            os.sync()
            growth = filesystem_used_bytes(mnt) - used
            (mnt / "probe.img").unlink()
            mine, theirs, ratio, _ = duel(src, mnt, ours, cp("--reflink=always"))
            results["clone.reflink_s"] = mine
            results["clone.reflink.cp_s"] = theirs
            results["clone.reflink.vs_cp"] = ratio
            results["clone.reflink.fs_growth_mb"] = growth / MiB
    except XfsUnavailable as e:
        print(f"  reflink part skipped: {e}")


def sparse_part(base: Path, results: dict[str, float]) -> None:
    workdir = base / "plain"
    workdir.mkdir()
    src = workdir / "source.img"
    make_source(src)
    mine, theirs, ratio, allocated = duel(src, workdir, ours, cp("--sparse=always"))
    results["clone.sparse_s"] = mine
    results["clone.sparse.cp_s"] = theirs
    results["clone.sparse.vs_cp"] = ratio
    results["clone.sparse.allocated_ratio"] = allocated / allocated_bytes(src)
    src.unlink()


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-clone-") as tmp:
        base = Path(tmp)
        cold = settle()
        print(f"clone: 10 GiB volume, 1 GiB data, median of {RUNS} interleaved runs, target fsync'd, "
              f"page cache {'dropped' if cold else 'NOT dropped (not root): warm'} before each run; "
              f"sparse copy on {filesystem_type(base)} (targets: reflink < 1 s, sparse <= 1.0x cp, "
              "allocated ratio 1.00 +- 0.01)")
        reflink_part(base, results)
        sparse_part(base, results)
    for k, v in results.items():
        print(f"  {k}: {v:.3f}")
    return results


if __name__ == "__main__":
    run()
