"""Registry imports for real: `pycdi importer` against docker-registry servers (TLS, plain HTTP, basic and token
auth, layered, multi-arch and broken images), and DataVolumes with `source.registry` on an embedded cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pycdi.api.sizes import usable_space
from pycdi.cluster.apiserver.pki import PKI
from tests.support.cluster import Cluster
from tests.support.images import Corpus, sha256_file
from tests.support.nginx import Credentials
from tests.support.registry import (
    RegistryServer,
    TokenServer,
    blob_path,
    make_layer,
    push_container_disk,
    push_image,
    push_index,
    registry_server,
    token_server,
)

MiB = 1 << 20
PVC = "100Mi"
CREDS = Credentials("puller", "s3cret")
ARM_DISK_SIZE = 8 * MiB


@dataclass
class Registries:
    """The module's registries and what was pushed into them (URLs as a DataVolume names them)."""

    tls: RegistryServer
    plain: RegistryServer
    basic: RegistryServer
    token: RegistryServer
    untrusted: RegistryServer
    tokens: TokenServer
    ca_pem: str
    arm_disk: Path
    urls: dict[str, str]


def _pattern_disk(path: Path) -> None:
    """A raw disk unlike the corpus's (the arm64 image of the index): random runs in zeros."""
    with open(path, "wb") as f:
        f.truncate(ARM_DISK_SIZE)
        for off in (0, 3 * MiB, ARM_DISK_SIZE - 4096):
            f.seek(off)
            f.write(os.urandom(4096))


def _push_all(r: Registries, corpus: Corpus, work: Path) -> None:
    urls = r.urls
    urls["raw"] = push_container_disk(r.tls, "disks/raw", "oci", corpus.path("raw")).url
    urls["qcow2"] = push_container_disk(r.tls, "disks/qcow2", "docker", corpus.path("qcow2"), docker=True).url
    urls["raw.gz"] = push_container_disk(r.tls, "disks/rawgz", "v1", corpus.path("raw.gz"), method="api").url
    urls["raw.xz"] = push_container_disk(r.tls, "disks/rawxz", "v1", corpus.path("raw.xz"), docker=True,
                                         method="api").url
    # Three layers as a rebuilt image has them: the old disk at the bottom (gzip), an unrelated uncompressed
    # layer, and a zstd top layer that whites the old disk out and adds the new one.
    old = make_layer(work / "old", {"disk": None, "disk/old.img": os.urandom(64 * 1024)}, "gz")
    mid = make_layer(work / "mid", {"etc": None, "etc/hostname": b"containerdisk\n"}, None)
    top = make_layer(work / "top", {"disk/.wh.old.img": b"", "disk/fedora.qcow2": corpus.path("qcow2")}, "zst")
    urls["layered"] = push_image(r.tls, "disks/layered", "v1", [old, mid, top]).url
    amd = push_image(r.tls, "disks/multi", None, [make_layer(work / "amd", {"disk/disk.img": corpus.path("raw.gz")})])
    arm = push_image(r.tls, "disks/multi", None, [make_layer(work / "arm", {"disk/disk.img": r.arm_disk})],
                     architecture="arm64")
    urls["multi"] = push_index(r.tls, "disks/multi", "v1", [
        (amd, {"os": "linux", "architecture": "amd64"}),
        (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]).url
    urls["multi-docker"] = push_index(r.tls, "disks/multi", "docker", [
        (arm, {"os": "linux", "architecture": "arm64"}), (amd, {"os": "linux", "architecture": "amd64"})
    ], docker=True).url
    urls["nodisk"] = push_image(r.tls, "disks/nodisk", "v1", [
        make_layer(work / "nodisk", {"disk": None, "etc/motd": b"no disk here\n"})]).url
    urls["two"] = push_image(r.tls, "disks/two", "v1", [
        make_layer(work / "two", {"disk/a.img": b"a" * 4096, "disk/b.img": b"b" * 4096})]).url
    urls["plain"] = push_container_disk(r.plain, "plain/raw", "v1", corpus.path("raw.zst")).url
    urls["basic"] = push_container_disk(r.basic, "secure/raw", "v1", corpus.path("raw.gz")).url
    urls["token"] = push_container_disk(r.token, "tok/qcow2", "v1", corpus.path("qcow2")).url
    urls["untrusted"] = push_container_disk(r.untrusted, "untrusted/raw", "v1", corpus.path("raw.gz")).url


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory, fixture_pki: PKI,
               image_corpus: Corpus) -> Iterator[Registries]:
    work = tmp_path_factory.mktemp("registries")
    pki = fixture_pki.directory
    with ExitStack() as stack:
        tokens = stack.enter_context(token_server(work / "tokens", CREDS))
        r = Registries(
            tls=stack.enter_context(registry_server(work / "tls", tls=True, pki_dir=pki)),
            plain=stack.enter_context(registry_server(work / "plain")),
            basic=stack.enter_context(registry_server(work / "basic", tls=True, auth=CREDS, pki_dir=pki)),
            token=stack.enter_context(registry_server(work / "token", tls=True, pki_dir=pki, token=tokens)),
            # Its own CA, which no DataVolume is given: trusted only through CDIConfig's insecureRegistries.
            untrusted=stack.enter_context(registry_server(work / "untrusted", tls=True, pki_dir=work / "other-pki")),
            tokens=tokens, ca_pem=fixture_pki.ca_cert_pem.decode(), arm_disk=work / "arm.img", urls={},
        )
        _pattern_disk(r.arm_disk)
        _push_all(r, image_corpus, work)
        yield r


# --- the worker on its own: `pycdi importer` with upstream's environment


@dataclass
class Outcome:
    code: int
    message: dict[str, Any]
    volume: Path
    stderr: str

    @property
    def text(self) -> str:
        return str(self.message.get("message", ""))


class Importer:
    def __init__(self, root: Path, ca_pem: str) -> None:
        self.root = root
        self.certs = root / "certs"
        self.certs.mkdir()
        (self.certs / "ca.pem").write_text(ca_pem)

    def __call__(self, url: str, *, ca: bool = True, block: bool = False, **env: str) -> Outcome:
        run = self.root / uuid.uuid4().hex[:8]
        volume, scratch = run / "volume", run / "scratch"
        volume.mkdir(parents=True)
        scratch.mkdir()
        mapping = {"/data": str(volume), "/scratch": str(scratch), "/dev/termination-log": str(run / "termination"),
                   "/certs": str(self.certs)}
        if block:
            mapping["/dev/cdi-block-volume"] = str(run / "device")
            with open(run / "device", "wb") as f:
                f.truncate(128 * MiB)
        full = {"PATH": os.environ["PATH"], "PYCDI_PATH_MAP": json.dumps(mapping), "IMPORTER_SOURCE": "registry",
                "IMPORTER_ENDPOINT": url, "IMPORTER_IMAGE_SIZE": PVC, "OWNER_UID": "uid-1",
                "IMPORTER_VOLUME_MODE": "Block" if block else "Filesystem", "INSECURE_TLS": "false"}
        if ca:
            full["IMPORTER_CERT_DIR"] = "/certs"
        full.update(env)
        proc = subprocess.run([sys.executable, "-m", "pycdi", "importer"], env=full, capture_output=True, timeout=180)
        term = run / "termination"
        return Outcome(proc.returncode, json.loads(term.read_text()) if term.exists() else {},
                       run / "device" if block else volume, proc.stderr.decode(errors="replace"))


@pytest.fixture
def importer(tmp_path: Path, registries: Registries) -> Importer:
    return Importer(tmp_path, registries.ca_pem)


def disk_sha256(volume: Path, length: int) -> str:
    return sha256_file(volume / "disk.img" if volume.is_dir() else volume, length)


def assert_corpus_disk(out: Outcome, corpus: Corpus) -> None:
    assert out.code == 0, (out.message, out.stderr)
    assert out.message == {"message": "Import Complete", "preallocationApplied": False}
    assert disk_sha256(out.volume, corpus.virtual_size) == corpus.sha256_raw
    if out.volume.is_dir():
        assert (out.volume / "disk.img").stat().st_size == usable_space(0.06, 100 * MiB)


@pytest.mark.parametrize(("image", "path"), [
    ("raw", "stream"), ("raw.gz", "stream"), ("raw.xz", "stream"), ("qcow2", "scratch"), ("layered", "scratch"),
])
def test_worker_imports_container_disks(importer: Importer, registries: Registries, image_corpus: Corpus,
                                        image: str, path: str) -> None:
    """raw (and compressed raw) streams straight into the volume; qcow2 goes through scratch; OCI and Docker
    manifests; a layered image whose top zstd layer replaces the disk of a lower one."""
    out = importer(registries.urls[image])
    assert_corpus_disk(out, image_corpus)
    assert f"Import Complete ({path})" in out.stderr


def test_worker_block_target(importer: Importer, registries: Registries, image_corpus: Corpus) -> None:
    for image in ("raw.gz", "qcow2"):
        out = importer(registries.urls[image], block=True)
        assert_corpus_disk(out, image_corpus)


def test_worker_picks_the_platform_from_an_index(importer: Importer, registries: Registries,
                                                 image_corpus: Corpus) -> None:
    arm_sha = sha256_file(registries.arm_disk)
    for url in (registries.urls["multi"], registries.urls["multi-docker"]):
        out = importer(url, IMPORTER_REGISTRY_IMAGE_ARCHITECTURE="arm64")
        assert out.code == 0, out.message
        assert disk_sha256(out.volume, ARM_DISK_SIZE) == arm_sha
        # The node's architecture (this machine's, amd64) when the DataVolume names none.
        assert_corpus_disk(importer(url), image_corpus)
    out = importer(registries.urls["multi"], IMPORTER_REGISTRY_IMAGE_ARCHITECTURE="s390x")
    assert out.code == 1 and out.message["transient"] is False
    assert out.text == (f"Unable to process data: image {registries.urls['multi']} has no linux/s390x manifest; "
                        "its index lists linux/amd64, linux/arm64/v8")


def test_worker_tls_trust(importer: Importer, registries: Registries, image_corpus: Corpus) -> None:
    url = registries.urls["raw.gz"]
    out = importer(url, ca=False)
    assert out.code == 1 and out.message["transient"] is False
    assert out.text.startswith(f"Unable to process data: TLS verification of https://{registries.tls.host}/v2/ failed")
    assert "give the registry's CA with certConfigMap, or list" in out.text
    assert not any(out.volume.iterdir())
    # An insecure registry (CDIConfig insecureRegistries -> INSECURE_TLS): the certificate is not verified.
    assert_corpus_disk(importer(url, ca=False, INSECURE_TLS="true"), image_corpus)


def test_worker_plain_http_only_for_insecure_registries(importer: Importer, registries: Registries,
                                                        image_corpus: Corpus) -> None:
    url = registries.urls["plain"]
    out = importer(url)
    assert out.code == 1 and out.message["transient"] is False
    assert f"TLS handshake with https://{registries.plain.host}/v2/ failed" in out.text
    assert f"list {registries.plain.host} in the CDIConfig's spec.insecureRegistries" in out.text
    out = importer(url, INSECURE_TLS="true")
    assert_corpus_disk(out, image_corpus)
    assert f"registry {registries.plain.host} speaks http" in out.stderr


def test_worker_basic_auth(importer: Importer, registries: Registries, image_corpus: Corpus) -> None:
    url = registries.urls["basic"]
    assert_corpus_disk(importer(url, IMPORTER_ACCESS_KEY_ID=CREDS.username, IMPORTER_SECRET_KEY=CREDS.password),
                       image_corpus)
    out = importer(url)
    assert out.code == 1 and out.message["transient"] is False
    assert out.text == (f"Unable to process data: image {url}: authentication refused by {registries.basic.host} "
                        "(401 Unauthorized: UNAUTHORIZED (authentication required)); the registry wants credentials: "
                        "give them with the DataVolume's secretRef")
    out = importer(url, IMPORTER_ACCESS_KEY_ID=CREDS.username, IMPORTER_SECRET_KEY="wrong")
    assert out.code == 1 and "check the credentials in the DataVolume's secretRef" in out.text


def test_worker_token_auth(importer: Importer, registries: Registries, image_corpus: Corpus) -> None:
    url = registries.urls["token"]
    tokens = registries.tokens
    seen = len(tokens.requests)
    assert_corpus_disk(importer(url, IMPORTER_ACCESS_KEY_ID=CREDS.username, IMPORTER_SECRET_KEY=CREDS.password),
                       image_corpus)
    # One token for the whole pull, asked for with the basic credentials and the repository's pull scope.
    assert tokens.requests[seen:] == [(CREDS.username, ["repository:tok/qcow2:pull"])]
    out = importer(url, IMPORTER_ACCESS_KEY_ID=CREDS.username, IMPORTER_SECRET_KEY="wrong")
    assert out.code == 1 and out.message["transient"] is False
    assert out.text.startswith(f"Unable to process data: the token service {tokens.realm} refused the credentials")
    out = importer(url)  # an anonymous token grants nothing here
    assert out.code == 1 and out.message["transient"] is False
    assert f"image {url}: authentication refused by {registries.token.host}" in out.text


@pytest.mark.parametrize(("name", "expected"), [
    ("missing-tag", "image {url} not found (404 Not Found: MANIFEST_UNKNOWN (manifest unknown))"),
    ("missing-repo", "image {url} not found (404 Not Found: "),  # docker-registry 2.8 says MANIFEST_UNKNOWN here
    ("nodisk", "no disk image found under /disk in {url}"),
    ("two", "{url} has more than one file under /disk (disk/a.img, disk/b.img)"),
    ("bad-name", 'Invalid image name "{url}": malformed repository component \'Disks\''),
])
def test_worker_permanent_failures_say_what(importer: Importer, registries: Registries, name: str,
                                            expected: str) -> None:
    host = registries.tls.host
    url = {"missing-tag": f"docker://{host}/disks/raw:nope", "missing-repo": f"docker://{host}/disks/none:v1",
           "bad-name": f"docker://{host}/Disks/raw"}.get(name) or registries.urls[name]
    out = importer(url)
    assert out.code == 1, out.stderr
    assert out.message["transient"] is False
    assert expected.format(url=url) in out.text
    assert not (out.volume / "disk.img").exists()


def test_worker_corrupt_blob_fails_its_digest(importer: Importer, registries: Registries) -> None:
    layer = make_layer(importer.root / "layer", {"disk/disk.img": b"\x01" * 100_000}, None)
    image = push_image(registries.tls, "disks/corrupt", "v1", [layer])
    stored = blob_path(registries.tls, layer.digest)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF  # in the end-of-archive padding: the tar still reads, only the digest can tell
    stored.write_bytes(bytes(data))
    out = importer(image.url)
    assert out.code == 1 and out.message["transient"] is False
    assert f"layer 1/1 ({layer.digest}) of {image.url} does not match its digest: expected {layer.digest}" in out.text


def test_worker_unreachable_registry_is_transient(importer: Importer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        out = importer(f"docker://127.0.0.1:{port}/disks/raw:v1", INSECURE_TLS="true")
    assert out.code == 1 and out.message["transient"] is True
    assert f"connection to https://127.0.0.1:{port}/v2/ failed" in out.text


def test_worker_memory_stays_flat(tmp_path: Path, registries: Registries) -> None:
    """A 1 GiB disk in a gzip layer: the layer and the disk are streamed, never held."""
    disk = tmp_path / "big.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 30)
        for i in range(16):
            f.seek(i * 64 * MiB)
            f.write(os.urandom(MiB))
    image = push_image(registries.plain, "big/disk", "v1", [make_layer(tmp_path / "layer", {"disk/big.img": disk})])
    volume = tmp_path / "volume"
    volume.mkdir()
    env = {"PATH": os.environ["PATH"], "IMPORTER_SOURCE": "registry", "IMPORTER_ENDPOINT": image.url,
           "INSECURE_TLS": "true", "IMPORTER_IMAGE_SIZE": "2Gi", "IMPORTER_VOLUME_MODE": "Filesystem",
           "PYCDI_PATH_MAP": json.dumps({"/data": str(volume), "/dev/termination-log": str(tmp_path / "t")})}
    # A wrapper whose only child is the importer: RUSAGE_CHILDREN is then the importer's own peak.
    wrapper = ("import resource, subprocess, sys; "
               "rc = subprocess.run([sys.executable, '-m', 'pycdi', 'importer']).returncode; "
               "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, timeout=300)
    rc, peak_kib = out.stdout.split()
    assert rc == "0", out.stderr
    assert int(peak_kib) < 150 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"
    assert sha256_file(volume / "disk.img", 1 << 30) == sha256_file(disk)
    assert (volume / "disk.img").stat().st_blocks * 512 < 32 * MiB  # zeros became holes


# --- DataVolumes on the embedded cluster


def data_volume(name: str, ns: str, registry: dict[str, Any], volume_mode: str = "Filesystem") -> dict[str, Any]:
    storage: dict[str, Any] = {"volumeMode": volume_mode, "resources": {"requests": {"storage": PVC}}}
    if volume_mode == "Block":  # the `local` StorageProfile lists Filesystem only, so Block names its access mode
        storage["accessModes"] = ["ReadWriteOnce"]
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name, "namespace": ns},
            "spec": {"source": {"registry": registry}, "storage": storage}}


def create(cluster: Cluster, *objs: dict[str, Any]) -> None:
    cluster.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def wait_phase(cluster: Cluster, ns: str, name: str, phase: str) -> dict[str, Any]:
    cluster.kubectl("wait", "-n", ns, f"--for=jsonpath={{.status.phase}}={phase}", f"dv/{name}", "--timeout=240s",
                    timeout=250)
    dv: dict[str, Any] = cluster.kubectl_json("get", "dv", name, "-n", ns)
    return dv


def condition(dv: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in dv["status"]["conditions"] if c["type"] == type_)


def volume_sha256(cluster: Cluster, ns: str, name: str, length: int) -> str:
    pvc = cluster.kubectl_json("get", "pvc", name, "-n", ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    path = Path(pv["spec"]["hostPath"]["path"])
    return sha256_file(path / "disk.img" if pvc["spec"]["volumeMode"] == "Filesystem" else path, length)


@dataclass
class Imports:
    ns: str
    urls: dict[str, str]


#: DataVolume name -> (image, source extras, volume mode); all created at once by the `imports` fixture.
IMPORTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "raw-oci": ("raw", {"certConfigMap": "registry-ca"}, "Filesystem"),
    "qcow2-docker-block": ("qcow2", {"certConfigMap": "registry-ca"}, "Block"),
    "raw-gz": ("raw.gz", {"certConfigMap": "registry-ca", "pullMethod": "node"}, "Filesystem"),
    "raw-xz-block": ("raw.xz", {"certConfigMap": "registry-ca"}, "Block"),
    "multi-arm64": ("multi", {"certConfigMap": "registry-ca", "platform": {"architecture": "arm64"}}, "Filesystem"),
    "basic-auth": ("basic", {"certConfigMap": "registry-ca", "secretRef": "registry-creds"}, "Filesystem"),
    "token-auth": ("token", {"certConfigMap": "registry-ca", "secretRef": "registry-creds"}, "Filesystem"),
    "missing-tag": ("missing-tag", {"certConfigMap": "registry-ca"}, "Filesystem"),
    "no-disk": ("nodisk", {"certConfigMap": "registry-ca"}, "Filesystem"),
}


@pytest.fixture(scope="module")
def imports(cluster: Cluster, registries: Registries) -> Imports:
    """One namespace with the CA ConfigMap and the credentials Secret, and every DataVolume of IMPORTS created
    together (they run concurrently; each test then waits for its own)."""
    ns = f"reg-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    urls = {**registries.urls, "missing-tag": f"docker://{registries.tls.host}/disks/raw:no-such-tag"}
    create(cluster,
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "registry-ca", "namespace": ns},
            "data": {"ca.crt": registries.ca_pem}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "registry-creds", "namespace": ns},
            "type": "Opaque", "stringData": {"accessKeyId": CREDS.username, "secretKey": CREDS.password}},
           *(data_volume(name, ns, {"url": urls[image], **extra}, mode)
             for name, (image, extra, mode) in IMPORTS.items()))
    return Imports(ns, urls)


@pytest.mark.parametrize("name", ["raw-oci", "qcow2-docker-block", "raw-gz", "raw-xz-block", "basic-auth",
                                  "token-auth"])
def test_dv_imports_the_disk(cluster: Cluster, imports: Imports, image_corpus: Corpus, name: str) -> None:
    dv = wait_phase(cluster, imports.ns, name, "Succeeded")
    assert dv["status"]["progress"] == "100.0%"
    assert condition(dv, "Ready")["status"] == "True"
    assert volume_sha256(cluster, imports.ns, name, image_corpus.virtual_size) == image_corpus.sha256_raw
    pvc = cluster.kubectl_json("get", "pvc", name, "-n", imports.ns)
    annotations = pvc["metadata"]["annotations"]
    assert annotations["cdi.kubevirt.io/storage.import.source"] == "registry"
    assert annotations["cdi.kubevirt.io/storage.import.endpoint"] == imports.urls[IMPORTS[name][0]]


def test_dv_platform_architecture(cluster: Cluster, imports: Imports, registries: Registries) -> None:
    wait_phase(cluster, imports.ns, "multi-arm64", "Succeeded")
    assert volume_sha256(cluster, imports.ns, "multi-arm64", ARM_DISK_SIZE) == sha256_file(registries.arm_disk)


@pytest.mark.parametrize(("name", "expected"), [
    ("missing-tag", "image {url} not found (404 Not Found: MANIFEST_UNKNOWN (manifest unknown))"),
    ("no-disk", "no disk image found under /disk in {url}"),
])
def test_dv_fails_with_the_reason(cluster: Cluster, imports: Imports, name: str, expected: str) -> None:
    dv = wait_phase(cluster, imports.ns, name, "Failed")
    running = condition(dv, "Running")
    assert (running["status"], running["reason"]) == ("False", "Error")
    assert running["message"].startswith("Unable to process data: ")
    assert expected.format(url=imports.urls[IMPORTS[name][0]]) in running["message"]


def test_insecure_registries_in_cdiconfig(cluster: Cluster, registries: Registries, image_corpus: Corpus) -> None:
    """Without the CA, and plain HTTP, fail; with their hosts in CDIConfig's insecureRegistries, both import."""
    ns = f"insecure-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    tls, plain = registries.urls["untrusted"], registries.urls["plain"]
    create(cluster, data_volume("tls-before", ns, {"url": tls}), data_volume("http-before", ns, {"url": plain}))
    for name, host in (("tls-before", registries.untrusted.host), ("http-before", registries.plain.host)):
        message = condition(wait_phase(cluster, ns, name, "Failed"), "Running")["message"]
        assert f"list {host} in the CDIConfig's spec.insecureRegistries" in message
    hosts = [registries.untrusted.host, registries.plain.host]
    cluster.kubectl("patch", "cdiconfig", "config", "--type", "merge", "-p",
                    json.dumps({"spec": {"insecureRegistries": hosts}}))
    try:
        create(cluster, data_volume("tls-after", ns, {"url": tls}),
               data_volume("http-after", ns, {"url": plain}, "Block"))
        for name in ("tls-after", "http-after"):
            wait_phase(cluster, ns, name, "Succeeded")
            assert volume_sha256(cluster, ns, name, image_corpus.virtual_size) == image_corpus.sha256_raw
    finally:
        cluster.kubectl("patch", "cdiconfig", "config", "--type", "merge", "-p",
                        json.dumps({"spec": {"insecureRegistries": None}}))
