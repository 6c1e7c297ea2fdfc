"""Uploads against a real `pycdi up`: UploadTokenRequest through kubectl and RBAC, the upload controller's pod,
DataVolume phases, curl through the TLS upload proxy to the upload server, the bytes on the volume, and every
answer the proxy and the server give."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from pycdi.cdiapi.uploadtoken import Payload, TokenIssuer, ensure_signing_keys
from tests.conftest import release_loop_devices
from tests.support.cluster import Cluster
from tests.support.images import Corpus, sha256_file

ANN = "cdi.kubevirt.io/storage."
WAIT = "120s"
MiB = 1 << 20


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = unique("up")
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def proxy_url(cluster: Cluster) -> str:
    """Where clients find the proxy: CDIConfig status (the harness runs `--upload-proxy-port 0`)."""
    url = str(cluster.kubectl_json("get", "cdiconfig", "config")["status"]["uploadProxyURL"])
    assert url.startswith("https://127.0.0.1:") and urlsplit(url).port not in (None, 0)
    return url


def ca_file(cluster: Cluster) -> Path:
    return cluster.data_dir / "pki" / "ca.crt"


def token(cluster: Cluster, ns: str, pvc: str, kubeconfig: Path | None = None) -> str:
    request = {"apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
               "metadata": {"generateName": "token-for-test-", "namespace": ns}, "spec": {"pvcName": pvc}}
    out = cluster.kubectl("create", "-f", "-", "-o", "jsonpath={.status.token}", input=json.dumps(request),
                          kubeconfig=kubeconfig)
    return out.stdout.strip()


def curl(cluster: Cluster, url: str, *args: str, auth: str | None = None) -> tuple[int, str]:
    """One request with the real curl, trusting the cluster CA; (status, body)."""
    cmd = ["curl", "-sS", "--cacert", str(ca_file(cluster)), "-o", "-", "-w", "\n%{http_code}", *args]
    if auth is not None:
        cmd += ["-H", f"Authorization: {auth}"]
    done = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=300, check=True)
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def upload(cluster: Cluster, proxy_url: str, ns: str, pvc: str, path: Path, endpoint: str = "/v1beta1/upload",
           ) -> tuple[int, str]:
    auth = f"Bearer {token(cluster, ns, pvc)}"
    if "form" in endpoint:
        return curl(cluster, proxy_url + endpoint, "-F", f"file=@{path}", auth=auth)
    return curl(cluster, proxy_url + endpoint, "-X", "POST", "-H", "Content-Type: application/octet-stream",
                "--data-binary", f"@{path}", auth=auth)


def data_volume(cluster: Cluster, ns: str, name: str, *, size: str = "100Mi", volume_mode: str = "Filesystem",
                content_type: str | None = None) -> None:
    spec: dict[str, Any] = {"source": {"upload": {}},
                            "storage": {"resources": {"requests": {"storage": size}}, "volumeMode": volume_mode}}
    if volume_mode == "Block":
        spec["storage"]["accessModes"] = ["ReadWriteOnce"]  # the local profile names Filesystem sets only
    if content_type:
        spec["contentType"] = content_type
    dv = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name, "namespace": ns},
          "spec": spec}
    cluster.kubectl("create", "-f", "-", input=json.dumps(dv))


def upload_pvc(cluster: Cluster, ns: str, name: str, *, size: str = "100Mi", volume_mode: str = "Filesystem",
               content_type: str = "kubevirt", storage_class: str | None = None) -> None:
    """A PVC as `virtctl image-upload pvc` makes it."""
    pvc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "labels": {"cdi.kubevirt.io/applyStorageProfile": "true"},
                     "annotations": {f"{ANN}upload.target": "", f"{ANN}contentType": content_type}},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": volume_mode,
                 "resources": {"requests": {"storage": size}}}}
    if storage_class:
        pvc["spec"]["storageClassName"] = storage_class
    cluster.kubectl("create", "-f", "-", input=json.dumps(pvc))


def wait_dv(cluster: Cluster, ns: str, name: str, phase: str) -> None:
    cluster.kubectl("wait", "-n", ns, f"dv/{name}", f"--for=jsonpath={{.status.phase}}={phase}", f"--timeout={WAIT}")


def wait_pvc_annotation(cluster: Cluster, ns: str, name: str, key: str, value: str) -> None:
    escaped = key.replace(".", "\\.").replace("/", "\\/")
    cluster.kubectl("wait", "-n", ns, f"pvc/{name}", f"--for=jsonpath={{.metadata.annotations.{escaped}}}={value}",
                    f"--timeout={WAIT}")


def wait_gone(cluster: Cluster, ns: str, kind: str, name: str) -> None:
    cluster.kubectl("wait", "-n", ns, f"{kind}/{name}", "--for=delete", f"--timeout={WAIT}")


def volume_path(cluster: Cluster, ns: str, pvc: str) -> Path:
    claim = cluster.kubectl_json("get", "-n", ns, "pvc", pvc)
    pv = cluster.kubectl_json("get", "pv", claim["spec"]["volumeName"])
    return Path(pv["spec"]["hostPath"]["path"])


def disk_of(cluster: Cluster, ns: str, pvc: str, volume_mode: str) -> Path:
    path = volume_path(cluster, ns, pvc)
    return path if volume_mode == "Block" else path / "disk.img"


def events(cluster: Cluster, ns: str, kind: str, name: str) -> list[tuple[str, str]]:
    items = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector",
                                 f"involvedObject.kind={kind},involvedObject.name={name}")["items"]
    return [(e["reason"], e["message"]) for e in items]


# ---- UploadTokenRequest --------------------------------------------------------------------------------------

def test_upload_token_request_is_a_create_only_api(cluster: Cluster, ns: str) -> None:
    resources = cluster.kubectl("api-resources", "--api-group=upload.cdi.kubevirt.io", "-o", "wide").stdout
    line = next(row for row in resources.splitlines() if row.startswith("uploadtokenrequests"))
    assert "utr,utrs" in line and "upload.cdi.kubevirt.io/v1beta1" in line and "UploadTokenRequest" in line
    assert "create" in line.split() and "true" in line.split()  # create only, namespaced
    manifest = {"apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
                "metadata": {"name": "tok", "namespace": ns}, "spec": {"pvcName": "disk"}}
    created = json.loads(cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(manifest)).stdout)
    assert created["spec"] == {"pvcName": "disk"}
    claims = jwt.decode(created["status"]["token"], options={"verify_signature": False})
    assert (claims["operation"], claims["name"], claims["namespace"]) == ("Upload", "disk", ns)
    assert claims["exp"] - claims["iat"] == 300
    # Nothing is kept: there is nothing to get or list.
    listed = cluster.kubectl("get", "utr", "-n", ns, check=False)
    assert listed.returncode != 0 and "MethodNotAllowed" in listed.stderr
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps({**manifest, "spec": {}}), check=False)
    assert refused.returncode != 0 and "spec.pvcName" in refused.stderr


def test_only_users_allowed_to_create_uploadtokenrequests_get_a_token(cluster: Cluster, ns: str) -> None:
    kubeconfig = cluster.new_user(unique("uploader"), ns)
    request = {"apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
               "metadata": {"name": "tok", "namespace": ns}, "spec": {"pvcName": "disk"}}
    refused = cluster.kubectl("create", "-f", "-", input=json.dumps(request), kubeconfig=kubeconfig, check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower() and "uploadtokenrequests" in refused.stderr
    user = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    name = user["status"]["userInfo"]["username"]
    # `edit` aggregates CDI's edit role, which grants create on uploadtokenrequests.
    cluster.kubectl("create", "rolebinding", "edit", "-n", ns, "--clusterrole=edit", f"--user={name}")
    cluster.kubectl("wait", "--for=create", "-n", ns, "rolebinding/edit", "--timeout=30s")
    assert token(cluster, ns, "disk", kubeconfig=kubeconfig).count(".") == 2
    # In another namespace the user still may not.
    other = cluster.kubectl("create", "-f", "-", input=json.dumps({**request, "metadata": {"name": "t",
                                                                                           "namespace": "default"}}),
                            kubeconfig=kubeconfig, check=False)
    assert other.returncode != 0 and "forbidden" in other.stderr.lower()


# ---- the whole flow ---------------------------------------------------------------------------------------

def test_data_volume_upload_end_to_end(cluster: Cluster, ns: str, proxy_url: str, image_corpus: Corpus) -> None:
    """UploadScheduled/UploadReady -> curl through the proxy -> Succeeded; the pod, its Secret and scratch go."""
    data_volume(cluster, ns, "disk")
    wait_dv(cluster, ns, "disk", "UploadReady")
    dv = cluster.kubectl_json("get", "dv", "disk", "-n", ns)
    conditions = {c["type"]: c for c in dv["status"]["conditions"]}
    assert conditions["Bound"]["status"] == "True"
    assert (conditions["Running"]["status"], conditions["Running"]["reason"]) == ("True", "Pod is running")
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "TransferRunning")
    pvc = cluster.kubectl_json("get", "pvc", "disk", "-n", ns)
    ann = pvc["metadata"]["annotations"]
    assert ann[f"{ANN}upload.target"] == "" and ann[f"{ANN}pod.ready"] == "true"
    assert ann[f"{ANN}pod.phase"] == "Running" and ann["cdi.kubevirt.io/storage.uploadPodName"] == "cdi-upload-disk"
    pod = cluster.kubectl_json("get", "pod", "cdi-upload-disk", "-n", ns)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == pvc["metadata"]["uid"]
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["pycdi", "uploadserver"] and container["name"] == "cdi-upload-server"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["CLIENT_NAME"] == "client.upload-server.cdi.kubevirt.io"
    assert env["UPLOAD_IMAGE_SIZE"] == pvc["spec"]["resources"]["requests"]["storage"]
    assert {v["name"] for v in pod["spec"]["volumes"]} == {"tls-config", "cdi-data-vol", "cdi-scratch-vol"}
    secret = cluster.kubectl_json("get", "secret", "cdi-upload-disk", "-n", ns)
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    cluster.kubectl("get", "pvc", "disk-scratch", "-n", ns)
    # On this machine the proxy reaches the server through a Unix socket in a directory only `pycdi up`'s user
    # can open, instead of mTLS over loopback.
    local = cluster.data_dir / "pods" / pod["metadata"]["uid"] / "run" / "uploadserver.sock"
    assert local.is_socket() and local.stat().st_mode & 0o777 == 0o600 and local.parent.stat().st_mode & 0o777 == 0o700
    assert f"and {local}" in cluster.kubectl("logs", "cdi-upload-disk", "-n", ns).stdout

    path = image_corpus.path("raw")
    assert upload(cluster, proxy_url, ns, "disk", path) == (200, "")
    wait_dv(cluster, ns, "disk", "Succeeded")
    dv = cluster.kubectl_json("get", "dv", "disk", "-n", ns)
    assert dv["status"]["progress"] == "100.0%"
    running = next(c for c in dv["status"]["conditions"] if c["type"] == "Running")
    assert (running["status"], running["reason"], running["message"]) == ("False", "Completed", "Upload Complete")
    disk = disk_of(cluster, ns, "disk", "Filesystem")
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.sha256_raw
    wait_gone(cluster, ns, "pod", "cdi-upload-disk")
    wait_gone(cluster, ns, "pvc", "disk-scratch")
    wait_gone(cluster, ns, "secret", "cdi-upload-disk")
    reasons = [r for r, _ in events(cluster, ns, "DataVolume", "disk")]
    assert "UploadReady" in reasons and "UploadSucceeded" in reasons
    assert ("UploadSucceeded", "Upload Successful") in events(cluster, ns, "PersistentVolumeClaim", "disk")
    # Done: the proxy says so.
    status, body = upload(cluster, proxy_url, ns, "disk", path)
    assert (status, body) == (503, "rejecting Upload Request for PVC disk that already finished uploading")


@pytest.mark.parametrize("way", ["the local socket", "TLS"])
def test_the_proxy_comes_through_the_local_socket_else_mtls(cluster: Cluster, ns: str, proxy_url: str,
                                                             tmp_path: Path, way: str) -> None:
    """The upload pod, kept after its upload, tells which way the bytes came: its local socket; or, when that is
    not there (as on a real cluster), TCP with the proxy's client certificate."""
    upload_pvc(cluster, ns, "disk", content_type="kubevirt")
    cluster.kubectl("annotate", "pvc", "disk", "-n", ns, f"{ANN}pod.retainAfterCompletion=true")
    wait_pvc_annotation(cluster, ns, "disk", f"{ANN}pod.ready", "true")
    if way == "TLS":
        uid = cluster.kubectl_json("get", "pod", "cdi-upload-disk", "-n", ns)["metadata"]["uid"]
        (cluster.data_dir / "pods" / uid / "run" / "uploadserver.sock").unlink()
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(4 * MiB))
    assert upload(cluster, proxy_url, ns, "disk", image) == (200, "")
    log = cluster.kubectl("logs", "cdi-upload-disk", "-n", ns).stdout
    assert log.count("Receiving the upload over") == 1 and f"Receiving the upload over {way}" in log
    assert sha256_file(disk_of(cluster, ns, "disk", "Filesystem"), 4 * MiB) == sha256_file(image, 4 * MiB)


@pytest.mark.parametrize(("target", "volume_mode", "image", "endpoint"), [
    ("dv", "Filesystem", "qcow2", "/v1beta1/upload-async"),
    ("dv", "Block", "raw.xz", "/v1beta1/upload"),
    ("pvc", "Block", "qcow2", "/v1beta1/upload-form"),
    ("pvc", "Filesystem", "raw.xz", "/v1alpha1/upload-form-async"),
    ("pvc", "Filesystem", "raw", "/v1alpha1/upload"),
])
def test_upload_formats_targets_and_endpoints(cluster: Cluster, ns: str, proxy_url: str, image_corpus: Corpus,
                                              target: str, volume_mode: str, image: str, endpoint: str) -> None:
    name = image.replace(".", "-")
    if target == "dv":
        data_volume(cluster, ns, name, volume_mode=volume_mode)
        wait_dv(cluster, ns, name, "UploadReady")
    else:
        upload_pvc(cluster, ns, name, volume_mode=volume_mode)
        wait_pvc_annotation(cluster, ns, name, f"{ANN}pod.ready", "true")
    assert upload(cluster, proxy_url, ns, name, image_corpus.path(image), endpoint) == (200, "")
    wait_pvc_annotation(cluster, ns, name, f"{ANN}pod.phase", "Succeeded")
    if target == "dv":
        wait_dv(cluster, ns, name, "Succeeded")
    disk = disk_of(cluster, ns, name, volume_mode)
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.expected_sha256(image)


@pytest.mark.parametrize("target", ["dv", "pvc"])
def test_archive_upload_extracts_the_files(cluster: Cluster, ns: str, proxy_url: str, image_corpus: Corpus,
                                           target: str) -> None:
    if target == "dv":
        data_volume(cluster, ns, "files", content_type="archive")
        wait_dv(cluster, ns, "files", "UploadReady")
    else:
        upload_pvc(cluster, ns, "files", content_type="archive")
        wait_pvc_annotation(cluster, ns, "files", f"{ANN}pod.ready", "true")
    # No scratch for an archive: it is extracted straight into the volume.
    assert cluster.kubectl("get", "pvc", "files-scratch", "-n", ns, check=False).returncode != 0
    # The client posts to the plain endpoint; the proxy sends archive content to the archive endpoint.
    assert upload(cluster, proxy_url, ns, "files", image_corpus.path("archive.tar.gz")) == (200, "")
    wait_pvc_annotation(cluster, ns, "files", f"{ANN}pod.phase", "Succeeded")
    root = volume_path(cluster, ns, "files")
    for rel, digest in image_corpus.data_manifest().items():
        assert sha256_file(root / rel) == digest, rel


# ---- what the proxy and the server answer ---------------------------------------------------------------

def test_token_errors(cluster: Cluster, ns: str, proxy_url: str, tmp_path: Path) -> None:
    url = proxy_url + "/v1beta1/upload"
    body = tmp_path / "x"
    body.write_bytes(b"x")
    assert curl(cluster, url, "-X", "POST", "-d", "x")[0] == 401  # no token
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth="Basic dXNlcjpwYXNz")[0] == 400  # malformed
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth="Bearer not.a-token")[0] == 401
    forger = TokenIssuer(ensure_signing_keys(tmp_path).private_key_pem)
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth=f"Bearer {forger.upload_token('d', ns)}")[0] == 401
    # Signed with the cluster's own key (read from its pki dir), but expired, or for something else.
    real = TokenIssuer(ensure_signing_keys(cluster.data_dir / "pki").private_key_pem)
    expired = real.issue(Payload("Upload", "d", ns), now=time.time() - 600)
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth=f"Bearer {expired}")[0] == 401
    clone = real.issue(Payload("Clone", "d", ns))
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth=f"Bearer {clone}")[0] == 400
    not_a_pvc = real.issue(Payload("Upload", "d", ns, {"group": "", "version": "v1", "resource": "secrets"}))
    assert curl(cluster, url, "-X", "POST", "-d", "x", auth=f"Bearer {not_a_pvc}")[0] == 401
    # A valid token for a PVC that does not exist, or is not an upload target: 503 with the reason.
    assert upload(cluster, proxy_url, ns, "nothing", body) == \
        (503, "rejecting Upload Request for PVC nothing that doesn't exist")
    plain = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "plain", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(plain))
    assert upload(cluster, proxy_url, ns, "plain", body) == (503, "PVC plain is not an upload target")


def test_not_ready_healthz_and_cors(cluster: Cluster, ns: str, proxy_url: str, tmp_path: Path) -> None:
    wffc = unique("wffc")
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": wffc},
        "provisioner": "kubevirt.io/hostpath-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}))
    upload_pvc(cluster, ns, "waiting", storage_class=wffc)  # never bound: no upload pod
    image = tmp_path / "x"
    image.write_bytes(b"x")
    status, body = upload(cluster, proxy_url, ns, "waiting", image)
    assert status == 503 and body.startswith("PVC waiting is not ready for upload")
    assert curl(cluster, proxy_url + "/healthz") == (200, "OK")
    preflight = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca_file(cluster)), "-X", "OPTIONS", "-D", "-", "-o", "/dev/null",
         "-H", "Origin: https://console.example.com", "-H", "Access-Control-Request-Method: POST",
         "-H", "Access-Control-Request-Headers: authorization,content-type", proxy_url + "/v1beta1/upload"],
        capture_output=True, text=True, check=True, timeout=60).stdout.lower()
    assert preflight.startswith("http/1.1 204")
    assert "access-control-allow-origin: *" in preflight
    assert "access-control-allow-methods: post" in preflight
    assert "access-control-allow-headers: authorization,content-type" in preflight
    actual = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca_file(cluster)), "-D", "-", "-o", "/dev/null",
         "-H", "Origin: https://console.example.com", proxy_url + "/healthz"],
        capture_output=True, text=True, check=True, timeout=60).stdout.lower()
    assert "access-control-allow-origin: *" in actual


def test_too_large_concurrent_interrupted_and_retried(cluster: Cluster, ns: str, proxy_url: str,
                                                      image_corpus: Corpus, tmp_path: Path) -> None:
    """One upload PVC through a too large image (400), a concurrent upload (503), a connection dropped
    mid-body: each leaves the upload pod ready for the next try, which completes."""
    upload_pvc(cluster, ns, "small", size="32Mi")
    wait_pvc_annotation(cluster, ns, "small", f"{ANN}pod.ready", "true")
    status, body = upload(cluster, proxy_url, ns, "small", image_corpus.path("raw.gz"))
    assert status == 400
    assert body.startswith("Saving stream failed: effective image size is larger than the reported available "
                           "storage: ")
    image = tmp_path / "small.raw"
    data = image_corpus.path("raw").read_bytes()[:16 * MiB]
    image.write_bytes(data)
    # A first upload that sends half its body and stops; a second one meanwhile is refused.
    first = RawUpload(proxy_url, ca_file(cluster), token(cluster, ns, "small"), len(data))
    first.send(data[:len(data) // 2])
    disk = disk_of(cluster, ns, "small", "Filesystem")
    until(lambda: disk.exists() and disk.stat().st_size >= MiB)  # the server is writing the first upload
    assert upload(cluster, proxy_url, ns, "small", image) == (503, "another upload is in progress")
    first.abort()  # the client goes away: the server drops the partial data and waits for another upload
    assert upload_until(cluster, proxy_url, ns, "small", image) == (200, "")
    wait_pvc_annotation(cluster, ns, "small", f"{ANN}pod.phase", "Succeeded")
    ann = cluster.kubectl_json("get", "pvc", "small", "-n", ns)["metadata"]["annotations"]
    assert ann[f"{ANN}pod.restarts"] == "0"  # every refusal left the same server running
    assert sha256_file(disk, len(data)) == sha256_file(image)


def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for a state inside the upload pod that no API object shows (a file on the volume)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def upload_until(cluster: Cluster, proxy_url: str, ns: str, pvc: str, image: Path, attempts: int = 50
                 ) -> tuple[int, str]:
    """Try again while the server is still busy with a dropped connection (503), as a client retries."""
    answer = (0, "")
    for _ in range(attempts):
        answer = upload(cluster, proxy_url, ns, pvc, image)
        if answer[0] != 503:
            return answer
        time.sleep(0.2)  # a client's pause between tries: nothing outside the pod tells when it is idle again
    return answer


class RawUpload:
    """An upload through the proxy over a raw TLS socket, so the test controls when the body stops."""

    def __init__(self, proxy_url: str, ca: Path, bearer: str, length: int) -> None:
        parts = urlsplit(proxy_url)
        ctx = ssl.create_default_context(cafile=str(ca))
        raw = socket.create_connection((parts.hostname or "", parts.port or 443), timeout=60)
        self.sock = ctx.wrap_socket(raw, server_hostname=parts.hostname)
        head = (f"POST /v1beta1/upload HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {bearer}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n")
        self.sock.sendall(head.encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def abort(self) -> None:
        self.sock.close()


def test_upload_objects_belong_to_cdi(cluster: Cluster, ns: str) -> None:
    """The CAs and the proxy's client certificate live in CDI's namespace, made by the upload controller."""
    upload_pvc(cluster, ns, "any")
    wait_pvc_annotation(cluster, ns, "any", f"{ANN}pod.ready", "true")
    secrets = {s["metadata"]["name"]: s for s in cluster.kubectl_json("get", "secrets", "-n", "cdi")["items"]}
    for name in ("cdi-uploadserver-signer", "cdi-uploadserver-client-signer", "cdi-uploadserver-client-cert"):
        assert name in secrets, sorted(secrets)
        assert set(secrets[name]["data"]) >= {"tls.crt", "tls.key"}
    bundle = cluster.kubectl_json("get", "configmap", "cdi-uploadserver-signer-bundle", "-n", "cdi")
    signer = base64.b64decode(secrets["cdi-uploadserver-signer"]["data"]["tls.crt"]).decode()
    assert bundle["data"]["ca-bundle.crt"] == signer


def test_a_restarted_cluster_mid_upload_lets_the_upload_complete_on_retry(tmp_path: Path,
                                                                         image_corpus: Corpus) -> None:
    """`pycdi up` stops while bytes are arriving: after the restart the upload pod is ready again (same claim,
    same Secret, new proxy port in CDIConfig) and a retry with a fresh token completes the DataVolume."""
    own = Cluster(tmp_path / "data").start()
    try:
        ns = unique("restart")
        own.kubectl("create", "namespace", ns)
        data_volume(own, ns, "disk")
        wait_dv(own, ns, "disk", "UploadReady")
        url = str(own.kubectl_json("get", "cdiconfig", "config")["status"]["uploadProxyURL"])
        data = image_corpus.path("raw").read_bytes()
        interrupted = RawUpload(url, ca_file(own), token(own, ns, "disk"), len(data))
        interrupted.send(data[:len(data) // 4])
        assert own.stop() == 0
        interrupted.abort()
        own.start()
        wait_dv(own, ns, "disk", "UploadReady")
        url = str(own.kubectl_json("get", "cdiconfig", "config")["status"]["uploadProxyURL"])
        assert upload_until(own, url, ns, "disk", image_corpus.path("raw")) == (200, "")
        wait_dv(own, ns, "disk", "Succeeded")
        disk = disk_of(own, ns, "disk", "Filesystem")
        assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.sha256_raw
    finally:
        own.stop()
        release_loop_devices(own.data_dir)
