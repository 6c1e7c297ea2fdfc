"""Import benchmark: the `pycdi importer` worker against the direct tools (nbdkit + qemu-img, curl, dd) over nginx."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cluster import Cluster
from tests.support.files import fsync_path
from tests.support.images import Corpus, corpus, sha256_file
from tests.support.nginx import nginx_server

from .common import VERDICT, print_table, rotated

MiB, GiB = 1 << 20, 1 << 30
VIRTUAL = 2 * GiB
DATA = 600 * 10**6  # bytes of files in the ext4 image (tests/support/images.py builds it)
DELAY = 0.005  # seconds nginx adds to every request in the slow-link part
#: Timed pairs after the warm-up; fewer for a quick look (PYCDI_BENCH_PAIRS=1).
PAIRS = int(os.environ.get("PYCDI_BENCH_PAIRS", "5"))
#: The corpus takes minutes to build (xz above all) and is the same every time: kept between runs.
CORPUS_ROOT = Path(os.environ.get("PYCDI_BENCH_CORPUS", str(Path.home() / ".cache" / "pycdi" / "bench-corpus")))
E2E_SLACK = 2.0  # seconds a DataVolume may add to the importer's own time
BLOCK = 4096


@dataclass
class Run:
    seconds: float
    output: Path
    peak_rss_mb: float = 0.0
    log: str = ""


Contender = Callable[[Path], Run]


@dataclass
class Duel:
    """Median seconds per contender and the median of the per-round ratios ours / baseline."""

    seconds: dict[str, float]
    ratios: dict[str, float]
    times: dict[str, list[float]] = field(default_factory=dict)  # per round, in round order
    allocated: list[int] = field(default_factory=list)  # bytes on disk of each of our outputs
    peak_rss_mb: float = 0.0


@dataclass
class Row:
    metric: str
    measured: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None  # None: shown for reference, no target


def data_bytes(raw: Path) -> int:
    """The image's data: bytes in 4 KiB blocks that are not all zeros (what a sparse copy must allocate)."""
    zero = bytes(BLOCK)
    total = 0
    fd = os.open(raw, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            while start < end:
                chunk = os.pread(fd, min(MiB, end - start), start)
                if chunk != bytes(len(chunk)):
                    total += sum(BLOCK for i in range(0, len(chunk), BLOCK) if chunk[i : i + BLOCK] != zero)
                start += len(chunk)
            pos = end
    finally:
        os.close(fd)
    return total


def importer(url: str, *, scratch: bool = True) -> Contender:
    """The worker as the node agent runs it: a fresh process, /data (and /scratch) mapped to host dirs."""

    def run(work: Path) -> Run:
        volume = work / "volume"
        volume.mkdir()
        mapping = {"/data": str(volume), "/dev/termination-log": str(work / "termination")}
        if scratch:
            (work / "scratch").mkdir()
            mapping["/scratch"] = str(work / "scratch")
        env = {"PATH": os.environ["PATH"], "PYCDI_PATH_MAP": json.dumps(mapping), "IMPORTER_SOURCE": "http",
               "IMPORTER_ENDPOINT": url, "IMPORTER_IMAGE_SIZE": str(VIRTUAL), "FILESYSTEM_OVERHEAD": "0",
               "IMPORTER_VOLUME_MODE": "Filesystem"}
        with open(work / "importer.log", "w+b") as log:
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "pycdi", "importer"], env=env, stdout=log, stderr=log)
            # wait4: the worker's peak RSS (the largest of it and its children: qemu-img, nbdkit, xz).
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            text = log.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"pycdi importer {url} failed ({proc.returncode}):\n{text[-3000:]}")
        return Run(seconds, volume / "disk.img", usage.ru_maxrss / 1024, text)

    return run


def shell(command: str) -> Contender:
    """A baseline pipeline; `{out}` and `{scratch}` are filled in, the output is fsynced inside the timing."""

    def run(work: Path) -> Run:
        out = work / "out.raw"
        line = command.format(out=out, scratch=work / "scratch.img")
        start = time.perf_counter()
        done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=work, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{line} failed ({done.returncode}): {done.stderr.strip()}")
        fsync_path(out)
        return Run(time.perf_counter() - start, out)

    return run


def nbdkit_baseline(url: str) -> Contender:
    return shell(f"nbdkit -r -U - curl url={url} --run 'qemu-img convert -t writeback -f qcow2 -O raw $nbd {{out}}'")


def scratch_baseline(url: str) -> Contender:
    """Upstream CDI's HTTP path today: the whole file into scratch, then a local convert."""
    return shell(f"curl -sSf -o {{scratch}} {url} && qemu-img convert -t writeback -f qcow2 -O raw {{scratch}} {{out}}"
                 " && rm {scratch}")


def dd_baseline(url: str, decompress: str | None) -> Contender:
    middle = f" | {decompress}" if decompress else ""
    return shell(f"curl -sSf {url}{middle} | dd of={{out}} bs=1M iflag=fullblock conv=sparse,fsync status=none")


def duel(label: str, ours: Contender, baselines: dict[str, Contender], work: Path, expected_sha: str,
         check: Callable[[Run], None] | None = None) -> Duel:
    """One warm-up round, then PAIRS rounds; each round runs ours and every baseline, the order rotating
    (AB, BA, ...). The warm-up checks every output's bytes; `check` looks at each of our runs."""
    times: dict[str, list[float]] = {"ours": [], **{name: [] for name in baselines}}
    result = Duel({}, {})
    contenders: list[tuple[str, Contender]] = [("ours", ours), *baselines.items()]
    for i in range(PAIRS + 1):
        for name, fn in rotated(contenders, i):
            place = work / f"{label}-{name}"
            shutil.rmtree(place, ignore_errors=True)
            place.mkdir()
            os.sync()  # the previous run's writeback must not land in this one's time
            run = fn(place)
            if i == 0:
                size = run.output.stat().st_size
                if size != VIRTUAL or sha256_file(run.output, VIRTUAL) != expected_sha:
                    raise RuntimeError(f"{label}/{name}: the output ({size} bytes) is not the image")
            else:
                times[name].append(run.seconds)
            if name == "ours":
                if check is not None:
                    check(run)
                result.allocated.append(run.output.stat().st_blocks * 512)
                result.peak_rss_mb = max(result.peak_rss_mb, run.peak_rss_mb)
            shutil.rmtree(place)
        if i:
            shown = ", ".join(f"{name} {times[name][-1]:.2f}s" for name, _ in contenders)
            print(f"  {label} round {i}/{PAIRS}: {shown}", flush=True)
    result.times = times
    result.seconds = {name: statistics.median(values) for name, values in times.items()}
    result.ratios = {name: statistics.median(a / b for a, b in zip(times["ours"], times[name], strict=True))
                     for name in baselines}
    return result


def expect_in_log(*needles: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        missing = [n for n in needles if n not in run.log]
        if missing:
            raise RuntimeError(f"importer log lacks {missing}:\n{run.log[-3000:]}")

    return check


# ---- end to end: a DataVolume through the embedded cluster ------------------------------------------------------


def _watch_phase(cluster: Cluster, path: str, name: str, rv: str, timeout: float = 600) -> str:
    query = urllib.parse.urlencode({"watch": "true", "resourceVersion": rv, "timeoutSeconds": str(int(timeout)),
                                    "fieldSelector": f"metadata.name={name}"})
    req = urllib.request.Request(f"{cluster.server}{path}?{query}")
    req.add_header("Authorization", f"Bearer {cluster.token}")
    with urllib.request.urlopen(req, context=cluster.ssl_context(), timeout=timeout) as resp:
        for line in resp:
            obj = json.loads(line)["object"]
            phase = str((obj.get("status") or {}).get("phase", ""))
            if phase in ("Succeeded", "Failed"):
                return phase
    return "timeout"


def datavolume_import(cluster: Cluster, namespace: str, url: str) -> Contender:
    """From the create request to the watch event saying Succeeded; the DataVolume is deleted afterwards."""
    path = f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes"

    def run(work: Path) -> Run:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"source": {"http": {"url": url}},
                         "storage": {"resources": {"requests": {"storage": str(VIRTUAL)}}}}}
        start = time.perf_counter()
        status, created, _ = cluster.request("POST", path, body)
        if status != 201:
            raise RuntimeError(f"DataVolume create: {status} {created}")
        phase = _watch_phase(cluster, path, name, created["metadata"]["resourceVersion"])
        seconds = time.perf_counter() - start
        if phase != "Succeeded":
            raise RuntimeError(f"DataVolume {name} ended {phase}:\n{cluster.log()}")
        pvc = cluster.kubectl_json("get", "pvc", name, "-n", namespace)
        pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
        disk = Path(pv["spec"]["hostPath"]["path"]) / "disk.img"
        # The volume is the cluster's: keep a sparse copy for the duel's checks, then delete the DataVolume.
        out = work / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(disk), str(out)], check=True)
        cluster.request("DELETE", f"{path}/{name}")
        cluster.kubectl("wait", "-n", namespace, "--for=delete", f"pvc/{name}", "--timeout=120s")
        return Run(seconds, out)

    return run


@contextmanager
def running_cluster(base: Path) -> Iterator[Cluster]:
    cluster = Cluster(base / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()  # also when it never became ready


# ---- the whole benchmark ----------------------------------------------------------------------------------------


def _ratio_row(metric: str, d: Duel, baseline: str, shown: str, target: float) -> Row:
    ratio = d.ratios[baseline]
    return Row(metric, f"{d.seconds['ours']:.2f} s", f"{d.seconds[baseline]:.2f} s ({shown})", f"{ratio:.2f}x",
               f"<= {target:.2f}x", ratio <= target)


def measure(base: Path, images: Corpus) -> tuple[dict[str, float], list[Row]]:
    names = {kind: images.path(kind).name for kind in ("qcow2", "raw", "raw.gz", "raw.zst", "raw.xz")}
    sha = images.sha256_raw
    data = data_bytes(images.path("raw"))
    results: dict[str, float] = {"import.image_data_mb": data / 1e6}
    rows: list[Row] = []
    duels: dict[str, Duel] = {}
    work = base / "work"
    work.mkdir()
    with nginx_server(base / "nginx", images.root) as web, nginx_server(base / "nginx-slow", images.root,
                                                                        delay=DELAY) as slow:
        url = web.url
        print(f"  nginx on {web.base_url} (and {slow.base_url} with {DELAY * 1000:.0f} ms per request)", flush=True)
        d = duels["qcow2"] = duel("qcow2", importer(url(names["qcow2"])), {
            "nbdkit": nbdkit_baseline(url(names["qcow2"])), "scratch": scratch_baseline(url(names["qcow2"]))},
            work, sha, expect_in_log("reading in place with nbdkit", "(nbdkit)"))
        results.update({"import.qcow2_s": d.seconds["ours"], "import.qcow2.nbdkit_s": d.seconds["nbdkit"],
                        "import.qcow2.scratch_s": d.seconds["scratch"], "import.qcow2.vs_nbdkit": d.ratios["nbdkit"],
                        "import.qcow2.vs_scratch": d.ratios["scratch"]})
        rows.append(_ratio_row("qcow2 over HTTP", d, "nbdkit", "nbdkit curl + qemu-img", 1.15))
        speedup = 1 / d.ratios["scratch"]
        rows.append(Row("qcow2 over HTTP, vs upstream's method", f"{d.seconds['ours']:.2f} s",
                        f"{d.seconds['scratch']:.2f} s (curl to scratch + qemu-img)", f"{speedup:.2f}x faster",
                        ">= 3.00x faster", speedup >= 3.0))

        s = slow.url(names["qcow2"])
        d = duels["qcow2-5ms"] = duel("qcow2-5ms", importer(s), {
            "scratch": scratch_baseline(s), "nbdkit": nbdkit_baseline(s)},
            work, sha, expect_in_log("downloading to scratch", "(scratch)"))
        results.update({"import.qcow2_5ms_s": d.seconds["ours"], "import.qcow2_5ms.scratch_s": d.seconds["scratch"],
                        "import.qcow2_5ms.nbdkit_s": d.seconds["nbdkit"],
                        "import.qcow2_5ms.vs_scratch": d.ratios["scratch"],
                        "import.qcow2_5ms.vs_nbdkit": d.ratios["nbdkit"]})
        rows.append(_ratio_row(f"qcow2, {DELAY * 1000:.0f} ms per request (chose scratch)", d, "scratch",
                               "curl to scratch + qemu-img", 1.0))
        rows.append(Row(f"  (nbdkit baseline at {DELAY * 1000:.0f} ms, for reference)", "",
                        f"{d.seconds['nbdkit']:.2f} s", f"{d.ratios['nbdkit']:.2f}x", "", None))

        for kind, tool, target in (("raw", None, 0.6), ("raw.gz", "pigz -dc", 0.5), ("raw.zst", "zstd -dc", 0.6),
                                   ("raw.xz", "xz -T0 -dc", 1.1)):
            u = url(names[kind])
            d = duels[kind] = duel(kind, importer(u), {"dd": dd_baseline(u, tool)}, work, sha,
                                   expect_in_log("(stream)"))
            key = "import." + kind.replace(".", "_")
            results.update({f"{key}_s": d.seconds["ours"], f"{key}.dd_s": d.seconds["dd"],
                            f"{key}.vs_dd": d.ratios["dd"]})
            pipeline = " | ".join(["curl", *([tool] if tool else []), "dd conv=sparse"])
            rows.append(_ratio_row(kind, d, "dd", pipeline, target))

        with running_cluster(base) as cluster:
            cluster.kubectl("create", "namespace", "bench-import")
            d = duels["e2e"] = duel("e2e", datavolume_import(cluster, "bench-import", url(names["qcow2"])),
                                    {"importer": importer(url(names["qcow2"]), scratch=False)}, work, sha)
        # Here "ours" is the DataVolume; what matters is the time it adds to the importer's own (per round).
        extra = statistics.median(a - b for a, b in zip(d.times["ours"], d.times["importer"], strict=True))
        results.update({"import.e2e_dv_s": d.seconds["ours"], "import.e2e.importer_s": d.seconds["importer"],
                        "import.e2e.overhead_s": extra})
        rows.append(Row("DataVolume create -> Succeeded (qcow2)", f"{d.seconds['ours']:.2f} s",
                        f"{d.seconds['importer']:.2f} s (the importer alone)", f"+{extra:.2f} s",
                        f"<= +{E2E_SLACK:.0f} s", extra <= E2E_SLACK))

    ours = [k for k in duels if k != "e2e"]
    rss = max(duels[k].peak_rss_mb for k in ours)
    results["import.peak_rss_mb"] = rss
    rows.append(Row("peak RSS of the importer (and its children)", f"{rss:.0f} MB", "", "", "< 150 MB", rss < 150))
    allocs = [a / data for k in ours for a in duels[k].allocated]
    worst = max(allocs, key=lambda r: abs(r - 1))
    results["import.allocated_vs_data"] = worst
    rows.append(Row("allocated on disk / image data (worst run)", f"{worst:.3f}", f"{data / 1e6:.0f} MB of data",
                    "", "1.00 +- 0.01", abs(worst - 1) <= 0.01))
    return results, rows


def run() -> dict[str, float]:
    images = corpus(CORPUS_ROOT, virtual_size=VIRTUAL, data_size=DATA)
    print(f"import: {VIRTUAL // GiB} GiB virtual ext4 image (~{DATA // 10**6} MB of files) from nginx on "
          f"127.0.0.1 into a plain file, medians of {PAIRS} interleaved rounds after a warm-up, outputs fsync'd, "
          f"page cache warm; corpus in {images.root}", flush=True)
    for kind in ("raw", "qcow2", "raw.gz", "raw.zst", "raw.xz"):
        images.path(kind)  # built once, minutes for xz
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-import-") as tmp:
        results, rows = measure(Path(tmp), images)
    # The pipelines under test are one Python process against several: other work on the machine weighs on
    # the ratios, so say how busy it was.
    print(f"  load average (1 min) before / after: {before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print_table(("metric", "measured", "baseline", "ratio", "target", ""),
                [(r.metric, r.measured, r.baseline, r.ratio, r.target, VERDICT[r.ok]) for r in rows])
    return results


if __name__ == "__main__":
    run()
