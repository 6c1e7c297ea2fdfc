"""Host-assisted clone benchmark: the two clone workers (`pycdi cloner source|target`, separate processes talking
TLS over loopback TCP, as two pods do) copying a 10 GiB volume holding 1 GiB of data, vs `cp --sparse=always` of
the same file in the same run; and a Block (loop device) -> Filesystem copy, its holes kept.

Upstream's host-assisted clone (tar + snappy over HTTPS) measured 0.22x a local sparse copy on this machine kind
(shared/research/perf.md); the target here is >= 0.8x cp.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.nginx import free_port

from bench.clone import DATA, RUNS, VOLUME, cp, make_source, settle
from pycdi.cluster.storage.fsinfo import allocated_bytes
from pycdi.datapath.clone.certs import new_certificate

SECRET = "bench"
#: The controller makes the clone's certificate before the workers start: not part of the timed copy.
TLS_CERT, TLS_KEY = new_certificate()


def workers(src: Path, dst_dir: Path, *, block_source: bool = False) -> None:
    """One clone by the two workers, each its own process; returns once both exited (the target fsync'd)."""
    port = free_port()
    dst_dir.mkdir(exist_ok=True)
    base = {**os.environ, "CLONER_SECRET": SECRET, "CLONER_TLS_CERT": TLS_CERT, "CONTENTTYPE": "kubevirt"}
    # The key goes to the target alone, as the controller's pods have it.
    target_env = {**base, "CLONER_TLS_KEY": TLS_KEY, "LISTEN_ADDRESS": "127.0.0.1", "LISTEN_PORT": str(port),
                  "DESTINATION": str(dst_dir), "VOLUME_MODE": "filesystem",
                  "PYCDI_TERMINATION_MESSAGE_PATH": str(dst_dir / ".target-term")}
    mount = str(src) if block_source else str(src.parent)
    source_env = {**base, "UPLOAD_URL": f"tcp://127.0.0.1:{port}", "MOUNT_POINT": mount,
                  "VOLUME_MODE": "block" if block_source else "filesystem",
                  "PYCDI_TERMINATION_MESSAGE_PATH": str(dst_dir / ".source-term")}
    cmd = [sys.executable, "-m", "pycdi", "cloner"]
    target = subprocess.Popen([*cmd, "target"], env=target_env, stderr=subprocess.DEVNULL)
    try:
        subprocess.run([*cmd, "source"], env=source_env, check=True, stderr=subprocess.DEVNULL)
        if target.wait(60) != 0:
            raise RuntimeError("the clone target failed")
    finally:
        if target.poll() is None:
            target.kill()  # ours, by its handle
            target.wait()


def stream_part(base: Path, results: dict[str, float]) -> None:
    workdir = base / "stream"
    (workdir / "src").mkdir(parents=True)
    src = workdir / "src" / "disk.img"  # the source worker reads MOUNT_POINT/disk.img
    make_source(src)
    times: dict[str, list[float]] = {"ours": [], "cp": []}
    allocated = 0
    for i in range(RUNS):
        order = ["ours", "cp"] if i % 2 == 0 else ["cp", "ours"]
        for name in order:
            dst = workdir / f"dst-{name}"
            settle()
            start = time.perf_counter()
            if name == "ours":
                workers(src, dst)
            else:
                dst.mkdir()
                cp("--sparse=always")(src, dst / "disk.img")
            times[name].append(time.perf_counter() - start)
            if name == "ours":
                allocated = allocated_bytes(dst / "disk.img")
            shutil.rmtree(dst)
    # cp's time over ours: >= 1 means as fast as a local sparse copy.
    pairs = zip(times["ours"], times["cp"], strict=True)
    results["clone.stream.throughput_vs_cp"] = statistics.median(c / o for o, c in pairs)
    results["clone.stream_s"] = statistics.median(times["ours"])
    results["clone.stream.cp_s"] = statistics.median(times["cp"])
    results["clone.stream.allocated_ratio"] = allocated / allocated_bytes(src)
    src.unlink()


def block_part(base: Path, results: dict[str, float]) -> None:
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists() or shutil.which("losetup") is None:
        print("  block part skipped: loop devices need root")
        return
    backing = base / "block.img"
    make_source(backing)
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        dst = base / "from-block"
        settle()
        start = time.perf_counter()
        workers(Path(device), dst, block_source=True)
        results["clone.block_to_fs_s"] = time.perf_counter() - start
        results["clone.block_to_fs.allocated_ratio"] = allocated_bytes(dst / "disk.img") / allocated_bytes(backing)
        shutil.rmtree(dst)
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
    backing.unlink()


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-stream-") as tmp:
        base = Path(tmp)
        cold = settle()
        print(f"clone stream: {VOLUME >> 30} GiB volume, {DATA >> 30} GiB data, two worker processes talking "
              f"TLS over loopback TCP vs cp --sparse=always, median of {RUNS} interleaved runs, target fsync'd, "
              f"page cache {'dropped' if cold else 'NOT dropped (not root)'} (target throughput_vs_cp >= 0.8; "
              f"allocated ratio ~1)")
        stream_part(base, results)
        block_part(base, results)
    for k, v in results.items():
        print(f"  {k}: {v:.3f}")
    return results


if __name__ == "__main__":
    run()
