"""Acceptance (issue 4 §4): every format x compression x volume mode imported over HTTP by a DataVolume reaches
`Succeeded` with the raw image's exact bytes; a subset also through nginx without ranges (scratch), TLS with a
certConfigMap and basic auth with a secretRef; `archive` content extracted into Filesystem volumes.

All DataVolumes are applied at once (one `kubectl apply` of many documents) and watched together, so the module
costs about one import's latency plus the machine's throughput; each DataVolume is then checked by its own test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from pycdi.api.sizes import usable_space
from pycdi.cluster.apiserver.pki import PKI
from tests.support.cluster import Cluster
from tests.support.images import ARCHIVE_NAMES, DISK_NAMES, Corpus, Unavailable, sha256_file
from tests.support.imports import (
    MiB,
    allocated,
    apply_yaml,
    claim_bytes,
    data_volume,
    describe_dv,
    nonzero_after,
    sha256_prefix,
    volume_path,
    watch_dvs,
)
from tests.support.nginx import Credentials, NginxServer, nginx_server

pytestmark = pytest.mark.timeout(900)

NS = "matrix"
SIZE = "100Mi"  # larger than the 64 MiB image, so a Filesystem disk.img is resized and has a tail to check
OVERHEAD = 0.06  # the default filesystem overhead of the `local` class
BATCH_TIMEOUT = 600.0
CREDS = Credentials("importer", "s3cr3t-pass")
FS, BLOCK = "Filesystem", "Block"


@dataclass(frozen=True)
class Case:
    """One DataVolume of the batch: which corpus file, served how, into which volume mode."""

    image: str
    mode: str
    server: str = "plain"  # plain | noranges | tls | auth
    api: str = "storage"
    archive: bool = False

    @property
    def dv(self) -> str:
        prefix = {"plain": "", "noranges": "nr-", "tls": "tls-", "auth": "auth-"}[self.server]
        return f"{prefix}{'fs' if self.mode == FS else 'blk'}-{self.image.replace('.', '-')}"


MATRIX = [Case(name, mode) for name in DISK_NAMES for mode in (FS, BLOCK)]
# Formats qemu-img must convert are downloaded to scratch when the server has no ranges; raw streams anyway.
NO_RANGES = [Case(n, FS, "noranges") for n in ("qcow2", "vmdk", "vdi", "vhd", "vhdx", "qcow2.gz", "raw", "iso.xz")] \
    + [Case("qcow2", BLOCK, "noranges")]
TLS = [Case(n, FS, "tls") for n in ("raw.gz", "qcow2", "vhdx.zst", "iso")] + [Case("qcow2", BLOCK, "tls", api="pvc")]
AUTH = [Case(n, FS, "auth") for n in ("raw.xz", "qcow2", "vdi")] + [Case("vmdk", BLOCK, "auth", api="pvc")]
ARCHIVES = [Case(n, FS, archive=True) for n in ARCHIVE_NAMES]
CASES = MATRIX + NO_RANGES + TLS + AUTH + ARCHIVES
SCRATCH_FORMATS = ("qcow2", "vmdk", "vdi", "vhd", "vhdx")


@dataclass
class Batch:
    cluster: Cluster
    corpus: Corpus
    phases: dict[str, str]
    missing: dict[str, str]  # image -> why this machine cannot build it


@pytest.fixture(scope="module")
def servers(image_corpus: Corpus, fixture_pki: PKI, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, NginxServer]]:
    with ExitStack() as stack:
        def start(key: str, **kw: object) -> NginxServer:
            workdir = tmp_path_factory.mktemp(f"nginx-{key}")
            return stack.enter_context(nginx_server(workdir, image_corpus.root, pki_dir=fixture_pki.directory,
                                                    **kw))  # type: ignore[arg-type]
        yield {"plain": start("plain"), "noranges": start("noranges", ranges=False), "tls": start("tls", tls=True),
               "auth": start("auth", auth=CREDS)}


@pytest.fixture(scope="module")
def batch(cluster: Cluster, image_corpus: Corpus, servers: dict[str, NginxServer]) -> Batch:
    missing: dict[str, str] = {}
    for name in {c.image for c in CASES}:
        try:
            image_corpus.path(name)
        except Unavailable as e:
            missing[name] = str(e)
    cluster.kubectl("create", "namespace", NS)
    tls = servers["tls"]
    assert tls.ca_pem is not None
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nginx-ca"},
         "data": {"ca.pem": tls.ca_pem.decode()}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nginx-auth"}, "type": "Opaque",
         "stringData": {"accessKeyId": CREDS.username, "secretKey": CREDS.password}},
    ]
    cases = [c for c in CASES if c.image not in missing]
    for case in cases:
        http: dict[str, str] = {"url": servers[case.server].url(image_corpus.entry(case.image).filename)}
        if case.server == "tls":
            http["certConfigMap"] = "nginx-ca"
        if case.server == "auth":
            http["secretRef"] = "nginx-auth"
        docs.append(data_volume(case.dv, {"http": http}, SIZE, mode=case.mode, api=case.api,
                                content_type="archive" if case.archive else None))
    apply_yaml(cluster, NS, *docs)
    phases = watch_dvs(cluster, NS, [c.dv for c in cases], BATCH_TIMEOUT)
    return Batch(cluster, image_corpus, phases, missing)


def succeeded(batch: Batch, case: Case) -> None:
    if case.image in batch.missing:
        pytest.skip(batch.missing[case.image])
    if batch.phases[case.dv] != "Succeeded":
        pytest.fail(f"DataVolume did not succeed: {describe_dv(batch.cluster, NS, case.dv)}")


def check_disk(batch: Batch, case: Case) -> None:
    corpus, cluster = batch.corpus, batch.cluster
    length, expected = corpus.expected_size(case.image), corpus.expected_sha256(case.image)
    volume = volume_path(cluster, NS, case.dv)
    if case.mode == BLOCK:
        assert sha256_prefix(volume, length) == expected, f"{case.dv}: the device's first {length} bytes differ"
        return
    disk = volume / "disk.img"
    usable = usable_space(OVERHEAD, claim_bytes(cluster, NS, case.dv))
    assert disk.stat().st_size == usable, f"{case.dv}: disk.img is {disk.stat().st_size} bytes, not {usable}"
    assert sha256_prefix(disk, length) == expected, f"{case.dv}: disk.img's first {length} bytes differ"
    tail = nonzero_after(disk, length)
    assert tail is None, f"{case.dv}: disk.img has non-zero data at {tail}, past the image's {length} bytes"
    # Zero blocks became holes: no more allocated than the uncompressed source's own data (plus metadata slack).
    source = corpus.path("iso" if case.image.startswith("iso") else "raw")
    assert allocated(disk) <= allocated(source) + 2 * MiB, \
        f"{case.dv}: {allocated(disk)} bytes allocated, the source holds {allocated(source)}"


@pytest.mark.parametrize("case", MATRIX, ids=[c.dv for c in MATRIX])
def test_format_compression_volume_mode(batch: Batch, case: Case) -> None:
    succeeded(batch, case)
    check_disk(batch, case)


@pytest.mark.parametrize("case", NO_RANGES, ids=[c.dv for c in NO_RANGES])
def test_server_without_ranges_uses_scratch(batch: Batch, case: Case) -> None:
    succeeded(batch, case)
    check_disk(batch, case)
    pvc = batch.cluster.kubectl_json("get", "pvc", case.dv, "-n", NS)
    scratch = pvc["metadata"]["annotations"].get("cdi.kubevirt.io/storage.import.requiresScratch")
    wanted = "true" if case.image.split(".")[0] in SCRATCH_FORMATS else None
    assert scratch == wanted, f"{case.dv}: requiresScratch={scratch}"
    # Scratch is removed once the import is done (garbage collection of the finished importer pod's claim).
    batch.cluster.kubectl("wait", "-n", NS, "--for=delete", f"pvc/{case.dv}-scratch", "--timeout=60s")


@pytest.mark.parametrize("case", TLS + AUTH, ids=[c.dv for c in TLS + AUTH])
def test_tls_and_basic_auth(batch: Batch, case: Case) -> None:
    succeeded(batch, case)
    check_disk(batch, case)


@pytest.mark.parametrize("case", ARCHIVES, ids=[c.dv for c in ARCHIVES])
def test_archive_content_is_extracted(batch: Batch, case: Case) -> None:
    succeeded(batch, case)
    volume = volume_path(batch.cluster, NS, case.dv)
    want = batch.corpus.data_manifest()
    got = {str(p.relative_to(volume)): sha256_file(p) for p in sorted(volume.rglob("*"))
           if p.is_file() and not p.is_symlink()}
    assert got == want, f"{case.dv}: extracted files differ: missing {sorted(set(want) - set(got))}, " \
                        f"extra {sorted(set(got) - set(want))}, changed " \
                        f"{sorted(k for k in set(want) & set(got) if want[k] != got[k])}"
    assert (volume / "empty-dir").is_dir()
    link = volume / "latest"
    assert link.is_symlink() and os.readlink(link) == "text/chapter-0000.txt", f"{case.dv}: the link was not kept"


def test_every_dv_in_the_batch_succeeded(batch: Batch) -> None:
    """One summary line per DataVolume that did not succeed (the per-DataVolume tests say why in detail)."""
    failed = [describe_dv(batch.cluster, NS, dv) for dv, phase in batch.phases.items() if phase != "Succeeded"]
    assert not failed, "\n".join(failed)
    # No importer pod and no scratch claim is left behind by a finished import.
    batch.cluster.kubectl("wait", "-n", NS, "--for=delete", "pods", "--all", "--timeout=60s", check=False)
    pods = batch.cluster.kubectl("get", "pods", "-n", NS, "-o", "name").stdout.split()
    assert not pods, pods
    claims = batch.cluster.kubectl("get", "pvc", "-n", NS, "-o", "name").stdout.split()
    assert sorted(c.removeprefix("persistentvolumeclaim/") for c in claims) == sorted(batch.phases)
