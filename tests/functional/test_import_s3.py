"""S3 imports against moto's real standalone server: DataVolumes with `source.s3` in a real embedded cluster
(TLS with a certConfigMap, IAM-checked keys, Filesystem and Block, failures), and the importer worker itself
(nbdkit reading a presigned URL in place, the fallback when the server refuses it, errors, flat memory)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.apiserver.pki import PKI
from tests.support.cluster import Cluster
from tests.support.images import Corpus, sha256_file
from tests.support.nginx import free_port
from tests.support.s3 import S3Server, s3_server

MiB = 1 << 20
ANN = "cdi.kubevirt.io/storage."
BUCKET = "images"
WAIT = 240  # seconds
STREAMED = ("raw", "raw.gz", "raw.xz", "raw.zst")


def key(image_corpus: Corpus, name: str) -> str:
    return f"disks/{image_corpus.entry(name).filename}"


def fill(server: S3Server, image_corpus: Corpus, names: tuple[str, ...], public: bool = False) -> S3Server:
    server.create_bucket(BUCKET)
    for name in names:
        server.upload(BUCKET, key(image_corpus, name), image_corpus.path(name), public=public)
    return server


@pytest.fixture(scope="module")
def s3_auth(tmp_path_factory: pytest.TempPathFactory, fixture_pki: PKI, image_corpus: Corpus) -> Iterator[S3Server]:
    """TLS with the fixtures' CA, and every request checked against an IAM user's keys (as AWS)."""
    with s3_server(tmp_path_factory.mktemp("moto-auth"), tls=True, iam_auth=True,
                   pki_dir=fixture_pki.directory) as server:
        yield fill(server, image_corpus, (*STREAMED, "qcow2"))


@pytest.fixture(scope="module")
def s3_open(tmp_path_factory: pytest.TempPathFactory, image_corpus: Corpus) -> Iterator[S3Server]:
    """Plain http, no signature checked, anonymous reads allowed (a public bucket)."""
    with s3_server(tmp_path_factory.mktemp("moto-open")) as server:
        yield fill(server, image_corpus, ("raw.gz", "qcow2"), public=True)


# --- DataVolumes in a real cluster


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"s3-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", name)
    return name


def secret(cluster: Cluster, ns: str, access_key: str, secret_key: str, name: str = "s3-creds") -> str:
    cluster.kubectl("create", "secret", "generic", name, "-n", ns, f"--from-literal=accessKeyId={access_key}",
                    f"--from-literal=secretKey={secret_key}")
    return name


def ca_config_map(cluster: Cluster, ns: str, server: S3Server) -> str:
    assert server.ca_path is not None
    cluster.kubectl("create", "configmap", "s3-ca", "-n", ns, f"--from-file=ca.pem={server.ca_path}")
    return "s3-ca"


def s3_dv(cluster: Cluster, ns: str, name: str, s3: dict[str, str], *, mode: str = "Filesystem",
          size: str = "128Mi") -> None:
    """What a user writes; the importer pod is kept after success so its log can be read. Block names its
    access mode: the hostpath provisioner's StorageProfile lists only RWO Filesystem."""
    storage: dict[str, Any] = {"volumeMode": mode, "resources": {"requests": {"storage": size}}}
    if mode == "Block":
        storage["accessModes"] = ["ReadWriteOnce"]
    dv = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
          "metadata": {"name": name, "namespace": ns,
                       "annotations": {f"{ANN}pod.retainAfterCompletion": "true"}},
          "spec": {"source": {"s3": s3}, "storage": storage}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(dv))


def wait_phase(cluster: Cluster, ns: str, name: str, phase: str) -> dict[str, Any]:
    done = cluster.kubectl("wait", "-n", ns, f"dv/{name}", f"--for=jsonpath={{.status.phase}}={phase}",
                           f"--timeout={WAIT}s", check=False, timeout=WAIT + 30)
    dv: dict[str, Any] = cluster.kubectl_json("get", "dv", name, "-n", ns)
    if done.returncode != 0:
        pvc = cluster.kubectl("get", "pvc", name, "-n", ns, "-o", "yaml", check=False).stdout
        seen = cluster.kubectl("get", "events,pods", "-n", ns, check=False).stdout
        raise AssertionError(f"dv/{name} not {phase}: {dv.get('status')}\npvc: {pvc}\n{seen}")
    return dv


def running_message(dv: dict[str, Any]) -> str:
    return str(next(c for c in dv["status"]["conditions"] if c["type"] == "Running").get("message", ""))


def pvc_annotations(cluster: Cluster, ns: str, name: str) -> dict[str, str]:
    return dict(cluster.kubectl_json("get", "pvc", name, "-n", ns)["metadata"].get("annotations") or {})


def volume(cluster: Cluster, ns: str, name: str, mode: str) -> Path:
    pvc = cluster.kubectl_json("get", "pvc", name, "-n", ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    path = Path(pv["spec"]["hostPath"]["path"])
    return path / "disk.img" if mode == "Filesystem" else path


def importer_log(cluster: Cluster, ns: str, name: str) -> str:
    return cluster.kubectl("logs", f"importer-{name}", "-n", ns).stdout


def auth_source(cluster: Cluster, ns: str, server: S3Server, object_key: str) -> dict[str, str]:
    return {"url": server.url(BUCKET, object_key), "secretRef": secret(cluster, ns, server.access_key,
            server.secret_key), "certConfigMap": ca_config_map(cluster, ns, server)}


@pytest.mark.parametrize("name", STREAMED)
def test_raw_and_compressed_raw_stream_into_the_volume(cluster: Cluster, ns: str, s3_auth: S3Server,
                                                       image_corpus: Corpus, name: str) -> None:
    dv = name.replace(".", "-")
    s3_dv(cluster, ns, dv, auth_source(cluster, ns, s3_auth, key(image_corpus, name)))
    status = wait_phase(cluster, ns, dv, "Succeeded")
    assert status["status"]["progress"] == "100.0%"
    assert sha256_file(volume(cluster, ns, dv, "Filesystem"), image_corpus.virtual_size) == \
        image_corpus.expected_sha256(name)
    ann = pvc_annotations(cluster, ns, dv)
    assert f"{ANN}import.requiresScratch" not in ann  # streamed straight into the target
    assert "Import Complete (stream)" in importer_log(cluster, ns, dv)


def test_qcow2_when_the_server_refuses_the_presigned_url_goes_through_scratch(
        cluster: Cluster, ns: str, s3_auth: S3Server, image_corpus: Corpus) -> None:
    """moto with IAM checks refuses presigned URLs (as AWS refuses nbdkit's HEAD on a GET-signed one): the
    importer downloads into scratch instead, with the signed GET."""
    s3_dv(cluster, ns, "qcow", auth_source(cluster, ns, s3_auth, key(image_corpus, "qcow2")))
    wait_phase(cluster, ns, "qcow", "Succeeded")
    assert sha256_file(volume(cluster, ns, "qcow", "Filesystem"), image_corpus.virtual_size) == \
        image_corpus.sha256_raw
    assert pvc_annotations(cluster, ns, "qcow")[f"{ANN}import.requiresScratch"] == "true"
    log = importer_log(cluster, ns, "qcow")
    assert "is not readable by nbdkit" in log and "Import Complete (scratch)" in log


def test_qcow2_anonymous_goes_by_the_presigned_url(cluster: Cluster, ns: str, s3_open: S3Server,
                                                  image_corpus: Corpus) -> None:
    """No secretRef: anonymous requests. The presigned URL answers nbdkit's HEAD, so the importer measures the
    link through it (a 206 to a ranged GET) and picks nbdkit or scratch by the round trip."""
    s3_dv(cluster, ns, "anon", {"url": s3_open.url(BUCKET, key(image_corpus, "qcow2"))})
    wait_phase(cluster, ns, "anon", "Succeeded")
    assert sha256_file(volume(cluster, ns, "anon", "Filesystem"), image_corpus.virtual_size) == \
        image_corpus.sha256_raw
    log = importer_log(cluster, ns, "anon")
    chosen = re.search(r"link round trip \d+\.\d+ ms: (reading in place with nbdkit|downloading to scratch)", log)
    assert chosen, log
    path = "nbdkit" if chosen[1].startswith("reading") else "scratch"
    assert f"Import Complete ({path})" in log


@pytest.mark.parametrize("name", ["raw.xz", "qcow2"])
def test_block_volume_gets_the_raw_bytes(cluster: Cluster, ns: str, s3_auth: S3Server, image_corpus: Corpus,
                                         name: str) -> None:
    dv = f"blk-{name.replace('.', '-')}"
    s3_dv(cluster, ns, dv, auth_source(cluster, ns, s3_auth, key(image_corpus, name)), mode="Block")
    wait_phase(cluster, ns, dv, "Succeeded")
    assert sha256_file(volume(cluster, ns, dv, "Block"), image_corpus.virtual_size) == image_corpus.sha256_raw


def test_wrong_keys_fail_with_access_refused(cluster: Cluster, ns: str, s3_auth: S3Server,
                                             image_corpus: Corpus) -> None:
    source = {"url": s3_auth.url(BUCKET, key(image_corpus, "raw.gz")),
              "secretRef": secret(cluster, ns, s3_auth.access_key, "not-the-secret-key"),
              "certConfigMap": ca_config_map(cluster, ns, s3_auth)}
    s3_dv(cluster, ns, "badkeys", source)
    message = running_message(wait_phase(cluster, ns, "badkeys", "Failed"))
    assert message.startswith("Unable to process data:")
    assert "access refused (SignatureDoesNotMatch" in message and "secretRef" in message
    assert pvc_annotations(cluster, ns, "badkeys")[f"{ANN}import.fatalError"] == "true"


@pytest.mark.parametrize(("bucket", "object_key", "expected"), [
    (BUCKET, "disks/missing.img", 'no object "disks/missing.img" in bucket "images" (NoSuchKey'),
    ("no-such-bucket", "disks/disk.img", 'bucket "no-such-bucket" does not exist (NoSuchBucket'),
])  # fmt: skip
def test_missing_object_fails_naming_bucket_and_key(cluster: Cluster, ns: str, s3_auth: S3Server, bucket: str,
                                                    object_key: str, expected: str) -> None:
    source = {"url": s3_auth.url(bucket, object_key),
              "secretRef": secret(cluster, ns, s3_auth.access_key, s3_auth.secret_key),
              "certConfigMap": ca_config_map(cluster, ns, s3_auth)}
    s3_dv(cluster, ns, "missing", source)
    message = running_message(wait_phase(cluster, ns, "missing", "Failed"))
    assert f'could not get s3 object "{bucket}/{object_key}"' in message and expected in message


def test_unknown_ca_fails_tls_verification(cluster: Cluster, ns: str, s3_auth: S3Server,
                                           image_corpus: Corpus) -> None:
    source = {"url": s3_auth.url(BUCKET, key(image_corpus, "raw.gz")),
              "secretRef": secret(cluster, ns, s3_auth.access_key, s3_auth.secret_key)}  # no certConfigMap
    s3_dv(cluster, ns, "noca", source)
    assert "TLS verification of" in running_message(wait_phase(cluster, ns, "noca", "Failed"))


# --- the importer worker on its own (`pycdi importer` with upstream's environment)


@dataclass
class Outcome:
    code: int
    message: dict[str, Any]
    volume: Path
    stderr: str


@pytest.fixture
def importer(tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(url: str, *, scratch: bool = False, ca: bytes | None = None, **env: str) -> Outcome:
        vol = tmp_path / "volume"
        vol.mkdir(exist_ok=True)
        mapping = {"/data": str(vol), "/dev/termination-log": str(tmp_path / "termination")}
        if scratch:
            (tmp_path / "scratch").mkdir(exist_ok=True)
            mapping["/scratch"] = str(tmp_path / "scratch")
        if ca:
            (tmp_path / "certs").mkdir(exist_ok=True)
            (tmp_path / "certs" / "ca.pem").write_bytes(ca)
            mapping["/certs"] = str(tmp_path / "certs")
            env["IMPORTER_CERT_DIR"] = "/certs"
        full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYCDI_PATH_MAP": json.dumps(mapping),
                "IMPORTER_SOURCE": "s3", "IMPORTER_ENDPOINT": url, "IMPORTER_IMAGE_SIZE": "128Mi",
                "IMPORTER_VOLUME_MODE": "Filesystem", "AWS_EC2_METADATA_DISABLED": "true", **env}
        proc = subprocess.run([sys.executable, "-m", "pycdi", "importer"], env=full, capture_output=True,
                              timeout=240)
        term = tmp_path / "termination"
        return Outcome(proc.returncode, json.loads(term.read_text()) if term.exists() else {}, vol,
                       proc.stderr.decode(errors="replace"))

    return run


def test_worker_reads_qcow2_in_place_through_a_presigned_url(importer, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
                                                             fixture_pki: PKI, image_corpus: Corpus) -> None:
    """Signed keys, TLS with our CA, no scratch mounted: only nbdkit on the presigned URL can do it."""
    with s3_server(tmp_path_factory.mktemp("moto-tls"), tls=True, pki_dir=fixture_pki.directory) as server:
        fill(server, image_corpus, ("qcow2",))
        out = importer(server.url(BUCKET, key(image_corpus, "qcow2")), ca=server.ca_pem, PYCDI_NBDKIT="always",
                       IMPORTER_ACCESS_KEY_ID=server.access_key, IMPORTER_SECRET_KEY=server.secret_key)
    assert out.code == 0, (out.message, out.stderr)
    assert "Import Complete (nbdkit)" in out.stderr
    assert sha256_file(out.volume / "disk.img", image_corpus.virtual_size) == image_corpus.sha256_raw


def test_worker_without_usable_presigned_url_asks_for_scratch(importer, s3_auth: S3Server,  # type: ignore[no-untyped-def]
                                                              image_corpus: Corpus) -> None:
    out = importer(s3_auth.url(BUCKET, key(image_corpus, "qcow2")), ca=s3_auth.ca_pem, PYCDI_NBDKIT="always",
                   IMPORTER_ACCESS_KEY_ID=s3_auth.access_key, IMPORTER_SECRET_KEY=s3_auth.secret_key)
    assert out.code == 0 and out.message.get("scratchSpaceRequired") is True, (out.message, out.stderr)
    assert "is not readable by nbdkit" in out.stderr
    assert "X-Amz-Signature" not in out.stderr  # the presigned URL's signature is never logged


def test_worker_connection_refused_is_transient(importer) -> None:  # type: ignore[no-untyped-def]
    out = importer(f"http://127.0.0.1:{free_port()}/{BUCKET}/disk.img", IMPORTER_ACCESS_KEY_ID="a",
                   IMPORTER_SECRET_KEY="b")
    assert out.code == 1 and out.message["transient"] is True, (out.message, out.stderr)
    assert f'could not get s3 object "{BUCKET}/disk.img"' in str(out.message["message"])


def test_worker_memory_stays_flat_on_a_large_object(s3_open: S3Server, tmp_path: Path) -> None:
    """A 256 MiB object of non-zero data streams through a worker whose peak RSS stays far below its size."""
    big = tmp_path / "big.img"
    block = os.urandom(MiB)
    with open(big, "wb") as f:
        for _ in range(256):
            f.write(block)
    s3_open.upload(BUCKET, "big.img", big, public=True)
    big.unlink()
    vol = tmp_path / "volume"
    vol.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "IMPORTER_SOURCE": "s3",
           "IMPORTER_ENDPOINT": s3_open.url(BUCKET, "big.img"), "IMPORTER_IMAGE_SIZE": "512Mi",
           "IMPORTER_VOLUME_MODE": "Filesystem", "AWS_EC2_METADATA_DISABLED": "true",
           "PYCDI_PATH_MAP": json.dumps({"/data": str(vol), "/dev/termination-log": str(tmp_path / "t")})}
    # A wrapper whose only child is the importer: RUSAGE_CHILDREN is then the importer's own peak.
    wrapper = ("import resource, subprocess, sys; "
               "rc = subprocess.run([sys.executable, '-m', 'pycdi', 'importer']).returncode; "
               "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, timeout=300)
    rc, peak_kib = out.stdout.split()
    assert rc == "0", out.stderr
    assert int(peak_kib) < 160 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"
    with open(vol / "disk.img", "rb") as f:
        assert f.read(MiB) == block
        f.seek(255 * MiB)
        assert f.read(MiB) == block
