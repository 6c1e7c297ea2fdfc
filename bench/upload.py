"""Upload benchmark: a 2 GiB raw image and its qcow2 through the TLS upload proxy of a real `pycdi up` into the
upload server, against `curl -T` of the same file into a loopback TLS sink that writes it sparsely and fsyncs it
(bench/upload_sink.py), and against nginx relaying the same upload over TLS (and over plain HTTP) into the sink,
the floor of a proxy hop (bench/upload_nginx.py); `pycdi image-upload` end to end (DataVolume created, uploaded,
Succeeded); the peak RSS of the proxy's process and of the upload server; the CPU time each side spends (steadier
than wall time on a shared 2-core machine). Throughput ratios: baseline seconds / ours, median over the rounds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cluster import Cluster
from tests.support.files import fsync_path
from tests.support.images import Corpus, corpus, sha256_file
from tests.support.nginx import children

from .common import (
    VERDICT,
    ProcessSampler,
    cgroup_cpus,
    cpu_seconds,
    print_table,
    rotated,
    timed,
    vm_hwm_mb,
)
from .upload_nginx import TlsRelay, nginx_tls_relay

MiB, GiB = 1 << 20, 1 << 30
VIRTUAL = 2 * GiB
DATA = 600 * 10**6  # bytes of files in the ext4 image (the import benchmark's image: one corpus for both)
PAIRS = int(os.environ.get("PYCDI_BENCH_PAIRS", "5"))
CORPUS_ROOT = Path(os.environ.get("PYCDI_BENCH_CORPUS", str(Path.home() / ".cache" / "pycdi" / "bench-corpus")))
NAMESPACE = "bench-upload"
#: Upstream's default CPU limit of CDI worker pods (CDIConfig podResourceRequirements).
DEFAULT_CPU_LIMIT = "750m"


@dataclass
class Run:
    seconds: float
    output: Path | None = None  # what to check after the warm-up round
    server_rss_mb: float = 0.0
    #: CPU seconds by part (client, proxy, server, sink...).
    cpu: dict[str, float] = field(default_factory=dict)


Contender = Callable[[Path], Run]


@dataclass
class Duel:
    times: dict[str, list[float]]  # per contender, one per round
    #: per contender and part: median CPU seconds.
    cpu: dict[str, dict[str, float]]
    server_rss_mb: float = 0.0

    def seconds(self, name: str) -> float:
        return statistics.median(self.times[name])

    def throughput(self, ours: str, baseline: str) -> float:
        """The baseline's seconds / ours, median over the rounds: our throughput as a share of the baseline's."""
        return statistics.median(b / a for a, b in zip(self.times[ours], self.times[baseline], strict=True))


def curl(*args: str) -> tuple[float, float]:
    seconds, cpu, _ = timed(["curl", "-sS", "--fail-with-body", "-o", "/dev/null", *args])
    return seconds, cpu


# ---- the baseline: curl -T into a sink ------------------------------------------------------------------------


@dataclass
class Sink:
    port: int
    out: Path
    ca: Path
    pid: int


@contextmanager
def upload_sink(work: Path, pki: Path, dense: bool = False, tls: bool = True) -> Iterator[Sink]:
    """bench/upload_sink.py serving TLS with the proxy's own certificate (same key type, same CA), or plain
    HTTP."""
    kind = ("dense" if dense else "sparse") + ("" if tls else "-plain")
    tls_args = ["--cert", str(pki / "uploadproxy.crt"), "--key", str(pki / "uploadproxy.key")] if tls else []
    port_file = work / f"sink-{kind}.port"
    out = work / f"sink-{kind}.img"
    proc = subprocess.Popen([sys.executable, "-m", "bench.upload_sink", "--out", str(out), "--port-file",
                             str(port_file), *tls_args, *(["--dense"] if dense else [])],
                            cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the upload sink did not start")
            time.sleep(0.05)  # the sink's only signal is the file it writes
        yield Sink(int(port_file.read_text()), out, pki / "ca.crt", proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def curl_into_sink(sink: Sink, image: Path, convert: bool = False, via: TlsRelay | None = None) -> Contender:
    """`curl -T` into the sink; with `convert`, then `qemu-img convert` of what arrived to raw (what the server
    must do with a qcow2), fsync'd; `via` an nginx TLS relay (the floor of a proxy hop)."""

    def run(work: Path) -> Run:
        sink_cpu = cpu_seconds(sink.pid)
        relay_pids = [] if via is None else [via.pid, *children(via.pid)]
        relay_cpu = sum(cpu_seconds(pid) for pid in relay_pids)
        port = sink.port if via is None else via.port
        start = time.perf_counter()
        _, client_cpu = curl("--cacert", str(sink.ca), "-T", str(image), f"https://127.0.0.1:{port}/disk")
        cpu = {"client": client_cpu, "sink": cpu_seconds(sink.pid) - sink_cpu}
        if via is not None:
            cpu["nginx"] = sum(cpu_seconds(pid) for pid in relay_pids) - relay_cpu
        output = sink.out
        if convert:
            output = work / "converted.raw"
            _, cpu["qemu-img"], _ = timed(["qemu-img", "convert", "-t", "writeback", "-f", "qcow2", "-O", "raw",
                                           str(sink.out), str(output)])
            fsync_path(output)
        seconds = time.perf_counter() - start
        if convert:
            sink.out.unlink()
            shutil.move(output, sink.out)
        return Run(seconds, sink.out, cpu=cpu)

    return run


# ---- ours: through the proxy into the upload server ---------------------------------------------------------


class Uploads:
    """DataVolumes for uploads in the bench namespace, and what runs them."""

    def __init__(self, cluster: Cluster, up_pid: int) -> None:
        self.cluster = cluster
        self.up_pid = up_pid  # `pycdi up`: the API server, the controllers and the upload proxy
        self.ca = cluster.data_dir / "pki" / "ca.crt"
        self.cpu_limit = ""
        #: CPU limit asked -> the quota the node agent put on the server's cgroup, in CPUs (0: none found).
        self.enforced: dict[str, float] = {}

    def proxy_url(self) -> str:
        return str(self.cluster.kubectl_json("get", "cdiconfig", "config")["status"]["uploadProxyURL"])

    def set_cpu_limit(self, cpu: str) -> None:
        """CDIConfig podResourceRequirements: worker pods created from now on get this CPU limit."""
        if cpu == self.cpu_limit:
            return
        self.cpu_limit = cpu
        self.cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p", json.dumps(
            {"spec": {"podResourceRequirements": {"limits": {"cpu": cpu}}}}))
        self.cluster.kubectl("wait", "cdiconfig/config", "--timeout=60s",
                             f"--for=jsonpath={{.status.defaultPodResourceRequirements.limits.cpu}}={cpu}")

    def ready_data_volume(self) -> str:
        name = f"up-{uuid.uuid4().hex[:8]}"
        dv = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
              "metadata": {"name": name, "namespace": NAMESPACE},
              "spec": {"source": {"upload": {}}, "storage": {"resources": {"requests": {"storage": str(VIRTUAL)}}}}}
        self.cluster.kubectl("create", "-f", "-", input=json.dumps(dv))
        self.wait_phase(name, "UploadReady")
        return name

    def wait_phase(self, name: str, phase: str) -> None:
        self.cluster.kubectl("wait", "-n", NAMESPACE, f"dv/{name}", f"--for=jsonpath={{.status.phase}}={phase}",
                             "--timeout=300s", timeout=330)

    def token(self, name: str) -> str:
        request = {"apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
                   "metadata": {"generateName": "bench-", "namespace": NAMESPACE}, "spec": {"pvcName": name}}
        return self.cluster.kubectl("create", "-f", "-", "-o", "jsonpath={.status.token}",
                                    input=json.dumps(request)).stdout.strip()

    def disk(self, name: str) -> Path:
        pvc = self.cluster.kubectl_json("get", "pvc", name, "-n", NAMESPACE)
        pv = self.cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
        return Path(pv["spec"]["hostPath"]["path"]) / "disk.img"

    def keep_and_delete(self, name: str, work: Path) -> Path:
        """A sparse copy of the disk for the warm-up check, then the DataVolume goes (with its volume)."""
        out = work / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(self.disk(name)), str(out)], check=True)
        self.delete(name)
        return out

    def delete(self, name: str) -> None:
        self.cluster.kubectl("delete", "dv", name, "-n", NAMESPACE, "--wait=false")
        self.cluster.kubectl("wait", "-n", NAMESPACE, "--for=delete", f"pvc/{name}", "--timeout=120s")

    def server_pid(self, name: str) -> int:
        """The upload server process of `cdi-upload-<name>` (HOSTNAME is the pod's name; the path map names
        this cluster's volumes, so other clusters' servers on the machine are not taken)."""
        wanted = f"HOSTNAME=cdi-upload-{name}".encode()
        root = str(self.cluster.data_dir).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in env and any(v.startswith(b"PYCDI_PATH_MAP=") and root in v for v in env):
                return int(entry.name)
        raise RuntimeError(f"no upload server process for {name}")

    def through_proxy(self, image: Path, cpu_limit: str = DEFAULT_CPU_LIMIT, local: bool = True) -> Contender:
        """From the first byte to the answer of the synchronous endpoint, which comes once the image is on the
        volume (converted, resized, fsync'd). The upload server runs with `cpu_limit`. Without `local`, the
        server's local socket is taken away first: the proxy goes over TCP with mTLS, as on a real cluster."""

        def run(work: Path) -> Run:
            self.set_cpu_limit(cpu_limit)
            name = self.ready_data_volume()
            if not local:
                uid = self.cluster.kubectl_json("get", "pod", f"cdi-upload-{name}", "-n", NAMESPACE)["metadata"]["uid"]
                (self.cluster.data_dir / "pods" / uid / "run" / "uploadserver.sock").unlink()
            token = self.token(name)
            pid = self.server_pid(name)
            self.enforced[cpu_limit] = cgroup_cpus(pid)
            server = ProcessSampler(pid)
            url = self.proxy_url()
            proxy_cpu = cpu_seconds(self.up_pid)
            with server:
                seconds, client_cpu = curl("--cacert", str(self.ca), "-X", "POST", "-H",
                                           f"Authorization: Bearer {token}", "-T", str(image), f"{url}/v1beta1/upload")
                proxy_cpu = cpu_seconds(self.up_pid) - proxy_cpu
            self.wait_phase(name, "Succeeded")
            cpu = {"client": client_cpu, "proxy": proxy_cpu, "server": server.cpu}
            return Run(seconds, self.keep_and_delete(name, work), server.peak_mb, cpu)

        return run

    def image_upload(self, image: Path) -> Contender:
        """`pycdi image-upload dv` as a user runs it: from the command to its exit with the DataVolume done."""

        def run(work: Path) -> Run:
            self.set_cpu_limit(DEFAULT_CPU_LIMIT)
            name = f"cli-{uuid.uuid4().hex[:8]}"
            env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
            proxy_cpu = cpu_seconds(self.up_pid)
            seconds, client_cpu, _ = timed([sys.executable, "-m", "pycdi", "image-upload", "dv", name, "-n",
                                            NAMESPACE, f"--size={VIRTUAL}", f"--image-path={image}"], env=env)
            # The cluster's share includes creating the DataVolume and running its controllers, not only the proxy.
            cpu = {"client": client_cpu, "cluster": cpu_seconds(self.up_pid) - proxy_cpu}
            return Run(seconds, self.keep_and_delete(name, work), cpu=cpu)

        return run


# ---- rounds ----------------------------------------------------------------------------------------------


def duel(label: str, contenders: dict[str, Contender], work: Path, expected_sha: str) -> Duel:
    """A warm-up round (every output checked against the image), then PAIRS rounds, the order rotating."""
    order = list(contenders.items())
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in contenders}
    rss = 0.0
    for i in range(PAIRS + 1):
        for name, fn in rotated(order, i):
            place = work / f"{label}-{name}"
            shutil.rmtree(place, ignore_errors=True)
            place.mkdir()
            os.sync()  # the previous run's writeback must not land in this one's time
            run = fn(place)
            if i == 0 and run.output is not None:
                size = run.output.stat().st_size
                if size != VIRTUAL or sha256_file(run.output, VIRTUAL) != expected_sha:
                    raise RuntimeError(f"{label}/{name}: the output ({size} bytes) is not the image")
            rss = max(rss, run.server_rss_mb)
            shutil.rmtree(place)
            if i:
                times[name].append(run.seconds)
                for part, seconds in run.cpu.items():
                    cpu[name].setdefault(part, []).append(seconds)
        if i:
            shown = ", ".join(f"{name} {times[name][-1]:.2f}s" for name in contenders)
            print(f"  {label} round {i}/{PAIRS}: {shown}", flush=True)
    return Duel(times, {name: {part: statistics.median(v) for part, v in parts.items()}
                        for name, parts in cpu.items()}, rss)


@dataclass
class Row:
    metric: str
    measured: str
    target: str
    ok: bool | None


def _throughput_row(metric: str, d: Duel, ours: str, baseline: str, shown: str, target: float | None) -> Row:
    mbps = VIRTUAL / MiB / d.seconds(ours)
    ratio = d.throughput(ours, baseline)
    measured = f"{d.seconds(ours):.2f} s, {mbps:.0f} MiB/s ({ratio:.2f}x {shown}: {d.seconds(baseline):.2f} s)"
    if target is None:
        return Row(metric, measured, "", None)
    return Row(metric, measured, f">= {target:.2f}x", ratio >= target)


def _cpu_text(parts: dict[str, float]) -> str:
    per_gib = {k: v * GiB / VIRTUAL for k, v in parts.items()}
    return " + ".join(f"{k} {v:.2f}" for k, v in per_gib.items()) + f" = {sum(per_gib.values()):.2f} s/GiB"


def measure(base: Path, images: Corpus) -> tuple[dict[str, float], list[Row]]:
    raw, qcow2 = images.path("raw"), images.path("qcow2")
    sha = images.sha256_raw
    work = base / "work"
    work.mkdir()
    results: dict[str, float] = {}
    rows: list[Row] = []
    duels: dict[str, Duel] = {}
    cluster = Cluster(base / "cluster")
    try:
        cluster.start()
        assert cluster.process is not None
        up_pid = cluster.process.pid
        cluster.kubectl("create", "namespace", NAMESPACE)
        uploads = Uploads(cluster, up_pid)
        up_before = vm_hwm_mb(up_pid)
        pki = cluster.data_dir / "pki"
        with upload_sink(work, pki) as sink, upload_sink(work, pki, dense=True) as dense, \
                upload_sink(work, pki, tls=False) as plain_sink, \
                nginx_tls_relay(work / "nginx", pki, sink.port) as relay, \
                nginx_tls_relay(work / "nginx-plain", pki, plain_sink.port, upstream_tls=False) as plain_relay:
            curl_raw = curl_into_sink(sink, raw)
            # Ours with upstream's default CPU limit on the upload server, and with the machine's cores as limit
            # (what the limit costs), interleaved with the same baselines and with the floor of a TLS proxy hop.
            duels["raw"] = duel("raw", {
                "ours": uploads.through_proxy(raw), "nolimit": uploads.through_proxy(raw, str(os.cpu_count() or 1)),
                "mtls": uploads.through_proxy(raw, local=False),
                "curl": curl_raw, "curl_dense": curl_into_sink(dense, raw),
                "curl_nginx": curl_into_sink(sink, raw, via=relay),
                "curl_nginx_plain": curl_into_sink(plain_sink, raw, via=plain_relay)}, work, sha)
            duels["qcow2"] = duel("qcow2", {"ours": uploads.through_proxy(qcow2),
                                            "curl": curl_into_sink(sink, qcow2, convert=True)}, work, sha)
            duels["e2e"] = duel("e2e", {"ours": uploads.image_upload(raw), "curl": curl_raw}, work, sha)
        up_peak = vm_hwm_mb(up_pid)
    finally:
        cluster.stop()
    raw_duel = duels["raw"]
    results["upload.raw_nolimit_s"] = raw_duel.seconds("nolimit")
    results["upload.raw_nolimit.throughput_vs_curl"] = raw_duel.throughput("nolimit", "curl")
    for key, d in duels.items():
        results[f"upload.{key}_s"] = d.seconds("ours")
        for baseline in (name for name in d.times if name.startswith("curl")):
            results[f"upload.{key}.{baseline}_s"] = d.seconds(baseline)
            results[f"upload.{key}.throughput_vs_{baseline}"] = d.throughput("ours", baseline)
        for who, parts in d.cpu.items():
            for part, seconds in parts.items():
                results[f"upload.{key}.{who}.{part}_cpu_s"] = seconds
    enforced = uploads.enforced.get(DEFAULT_CPU_LIMIT, 0.0)
    rows.append(_throughput_row(f"raw through the TLS proxy (upload server limited to {DEFAULT_CPU_LIMIT}, enforced: "
                                f"{enforced:g} CPU)", raw_duel, "ours", "curl", "curl -T into a sparse sink", 0.9))
    rows.append(_throughput_row("  same, upload server without CPU limit", raw_duel, "nolimit", "curl",
                                "curl -T into a sparse sink", None))
    rows.append(_throughput_row("  same (limited), proxy to server over TCP and mTLS (a real cluster's way)", raw_duel,
                                "mtls", "curl", "curl -T into a sparse sink", None))
    rows.append(_throughput_row("  same (limited), against a sink writing every byte", raw_duel, "ours", "curl_dense",
                                "curl -T into a dense sink", None))
    rows.append(_throughput_row("  floor of a TLS proxy hop: nginx relaying over TLS into the same sink",
                                raw_duel, "curl_nginx", "curl", "curl -T into a sparse sink", None))
    rows.append(_throughput_row("  ours over mTLS (limited) against that floor", raw_duel, "mtls", "curl_nginx",
                                "curl -T through nginx", None))
    rows.append(_throughput_row("  nginx relaying over plain HTTP into a plain sink (one TLS hop, as in perf.md)",
                                raw_duel, "curl_nginx_plain", "curl", "curl -T into a sparse sink", None))
    rows.append(Row("  CPU per GiB: ours (curl, proxy, upload server) vs curl + sink",
                    f"{_cpu_text(raw_duel.cpu['nolimit'])} vs {_cpu_text(raw_duel.cpu['curl'])}", "", None))
    rows.append(Row("  CPU per GiB: curl + sink through nginx", _cpu_text(raw_duel.cpu["curl_nginx"]), "", None))
    rows.append(_throughput_row("qcow2 through the TLS proxy, converted to raw", duels["qcow2"], "ours", "curl",
                                "curl -T + qemu-img convert", None))
    rows.append(_throughput_row("`pycdi image-upload dv` raw, DataVolume create -> Succeeded", duels["e2e"], "ours",
                                "curl", "curl -T", 0.8))
    server = max(d.server_rss_mb for d in duels.values())
    results["upload.server_peak_rss_mb"] = server
    results["upload.proxy_process_peak_rss_mb"] = up_peak
    results["upload.proxy_process_rss_growth_mb"] = max(0.0, up_peak - up_before)
    rows.append(Row("peak RSS of the upload server", f"{server:.0f} MB", "< 150 MB", server < 150))
    rows.append(Row("peak RSS of `pycdi up` (API server, controllers and the proxy)",
                    f"{up_peak:.0f} MB (+{max(0.0, up_peak - up_before):.0f} MB during the uploads)", "< 150 MB",
                    up_peak < 150))
    return results, rows


def run() -> dict[str, float]:
    images = corpus(CORPUS_ROOT, virtual_size=VIRTUAL, data_size=DATA)
    print(f"upload: {VIRTUAL // GiB} GiB virtual ext4 image (~{DATA // 10**6} MB of files) and its qcow2, TLS "
          f"from the client, medians of {PAIRS} interleaved rounds after a warm-up, outputs fsync'd, page cache warm; "
          f"corpus in {images.root}", flush=True)
    for kind in ("raw", "qcow2"):
        images.path(kind)
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-upload-") as tmp:
        results, rows = measure(Path(tmp), images)
    print_table(("metric", "measured", "target", ""), [(r.metric, r.measured, r.target, VERDICT[r.ok]) for r in rows])
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, sort_keys=True))
