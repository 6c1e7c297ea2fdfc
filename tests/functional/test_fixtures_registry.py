"""The registry fixture really serves pushed containerDisks over the v2 API, with TLS and auth when asked."""

from __future__ import annotations

import hashlib
import io
import json
import ssl
import subprocess
import tarfile
import urllib.error
from pathlib import Path

import pytest

from tests.support.fixtures import RegistryFactory
from tests.support.images import Corpus, sha256_file
from tests.support.nginx import Credentials
from tests.support.registry import (
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_LAYER,
    OCI_MANIFEST,
    ContainerDisk,
    RegistryServer,
    push_container_disk,
)

ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST))


def check_pulled(registry: RegistryServer, pushed: ContainerDisk, disk: Path) -> None:
    """Pull as a client would: manifest by tag, then config and layer blobs by digest, each verified."""
    repo, tag = pushed.reference.removeprefix(registry.host + "/").rsplit(":", 1)
    status, headers, body = registry.request("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    assert status == 200, body
    assert headers["Docker-Content-Digest"] == pushed.manifest_digest
    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed.manifest_digest
    manifest = json.loads(body)
    assert manifest["mediaType"] == pushed.manifest_media_type == headers["Content-Type"]
    (layer_desc,) = manifest["layers"]
    assert layer_desc["digest"] == pushed.layer_digest
    assert layer_desc["mediaType"] == (DOCKER_LAYER if pushed.manifest_media_type == DOCKER_MANIFEST else OCI_LAYER)
    status, _, config = registry.request("GET", f"/v2/{repo}/blobs/{manifest['config']['digest']}")
    assert status == 200 and json.loads(config)["rootfs"]["type"] == "layers"
    status, _, layer = registry.request("GET", f"/v2/{repo}/blobs/{pushed.layer_digest}")
    assert status == 200 and "sha256:" + hashlib.sha256(layer).hexdigest() == pushed.layer_digest
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        member = tar.getmember(pushed.disk_path)
        assert (member.uid, member.mode) == (107, 0o444)
        f = tar.extractfile(member)
        assert f is not None
        assert hashlib.sha256(f.read()).hexdigest() == sha256_file(disk)
    assert pushed.url == f"docker://{pushed.reference}"


@pytest.mark.parametrize("method", ["skopeo", "api"])
@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_push_and_pull_plain(registry_factory: RegistryFactory, image_corpus: Corpus, method: str,
                             docker: bool) -> None:
    registry = registry_factory()
    disk = image_corpus.path("qcow2")
    pushed = push_container_disk(registry, "pycdi/fedora", "v1", disk, docker=docker, method=method)
    assert pushed.reference == f"127.0.0.1:{registry.port}/pycdi/fedora:v1"
    check_pulled(registry, pushed, disk)
    status, _, body = registry.request("GET", "/v2/_catalog")
    assert status == 200 and json.loads(body)["repositories"] == ["pycdi/fedora"]


def test_tls_and_basic_auth(registry_factory: RegistryFactory, image_corpus: Corpus) -> None:
    creds = Credentials("puller", "pw")
    registry = registry_factory(tls=True, auth=creds)
    assert registry.base_url.startswith("https://")
    disk = image_corpus.path("raw.gz")  # any file: CDI takes the one under disk/
    pushed = push_container_disk(registry, "disks/raw", "latest", disk)
    check_pulled(registry, pushed, disk)
    status, headers, _ = registry.request("GET", "/v2/disks/raw/manifests/latest", auth=False)
    assert status == 401 and headers["Www-Authenticate"].startswith("Basic realm=")
    wrong = RegistryServer(registry.workdir, registry.port, "https", registry.pid, registry.ca_pem,
                           registry.ca_path, Credentials("puller", "nope"))
    assert wrong.request("GET", "/v2/")[0] == 401
    assert (registry.workdir / "htpasswd").read_text().startswith("puller:$2y$")
    untrusting = RegistryServer(registry.workdir, registry.port, "https", registry.pid, None, None, creds)
    with pytest.raises(urllib.error.URLError) as err:
        untrusting.request("GET", "/v2/")
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)


def test_skopeo_reads_back_what_was_pushed(registry_factory: RegistryFactory, image_corpus: Corpus,
                                           tmp_path: Path) -> None:
    creds = Credentials("u", "p")
    registry = registry_factory(tls=True, auth=creds)
    pushed = push_container_disk(registry, "pycdi/disk", "v2", image_corpus.path("qcow2"), method="api")
    assert registry.ca_pem is not None
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(registry.ca_pem)
    done = subprocess.run(["skopeo", "inspect", "--cert-dir", str(certs), "--creds", "u:p",
                           f"docker://{pushed.reference}"], capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["Digest"] == pushed.manifest_digest and info["Layers"] == [pushed.layer_digest]


def test_stop_ends_the_process(tmp_path: Path) -> None:
    import os

    from tests.support.registry import registry_server
    with registry_server(tmp_path / "r") as registry:
        assert registry.request("GET", "/v2/")[0] == 200
        pid = registry.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
