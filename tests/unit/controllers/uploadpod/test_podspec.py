"""The upload pod, its TLS Secret and certificates, and the DataVolume phases of an upload, as upstream's."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from pycdi.controllers.datavolume import claim, phases
from pycdi.controllers.importpod.podspec import PodOptions
from pycdi.controllers.uploadpod.certs import issue, new_ca, usable
from pycdi.controllers.uploadpod.controller import pod_ready
from pycdi.controllers.uploadpod.podspec import is_upload_pvc, needs_scratch, pod_secret, upload_pod, upload_pod_name

ANN = "cdi.kubevirt.io/storage."
CONFIG = {"status": {"filesystemOverhead": {"global": "0.06", "storageClass": {"local": "0.055"}},
                     "defaultPodResourceRequirements": {"limits": {"cpu": "750m", "memory": "600M"}}}}


def pvc(mode: str = "Filesystem", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "disk", "namespace": "team", "uid": "pvc-uid",
                         "annotations": {f"{ANN}upload.target": "", **annotations}},
            "spec": {"volumeMode": mode, "storageClassName": "local", "resources": {"requests": {"storage": "2Gi"}}},
            "status": {"phase": "Bound"}}


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_upload_pod_for_a_filesystem_claim() -> None:
    pod = upload_pod(pvc(**{f"{ANN}preallocation.requested": "true", f"{ANN}pod.priorityclassname": "high"}),
                     CONFIG, PodOptions(), scratch="disk-scratch")
    meta = pod["metadata"]
    assert meta["name"] == "cdi-upload-disk" and meta["namespace"] == "team"
    assert meta["ownerReferences"][0] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "disk",
                                          "uid": "pvc-uid", "controller": True, "blockOwnerDeletion": True}
    assert meta["labels"]["cdi.kubevirt.io"] == "cdi-upload-server"
    assert meta["labels"]["cdi.kubevirt.io/uploadTarget"] == "pvc-uid"
    assert meta["labels"]["service"] == "cdi-upload-disk"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure" and spec["priorityClassName"] == "high"
    container = spec["containers"][0]
    assert container["name"] == "cdi-upload-server" and container["command"] == ["pycdi", "uploadserver"]
    assert container["resources"]["limits"]["memory"] == "600M"
    env = env_of(pod)
    assert env["TLS_CERT_FILE"] == "/etc/tls/tls.crt" and env["TLS_KEY_FILE"] == "/etc/tls/tls.key"
    assert env["CLIENT_CERT_FILE"] == "/etc/tls/ca.crt"
    assert env["CLIENT_NAME"] == "client.upload-server.cdi.kubevirt.io"
    assert env["UPLOAD_IMAGE_SIZE"] == "2Gi" and env["FILESYSTEM_OVERHEAD"] == "0.055"
    assert env["PREALLOCATION"] == "true" and env["LISTEN_PORT"] == "8443"
    assert env["LISTEN_ADDRESS"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
    assert "DESTINATION" not in env
    assert container["volumeMounts"] == [{"name": "tls-config", "mountPath": "/etc/tls/"},
                                         {"name": "cdi-data-vol", "mountPath": "/data"},
                                         {"name": "cdi-scratch-vol", "mountPath": "/scratch"}]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tls-config"] == {"name": "tls-config", "secret": {"secretName": "cdi-upload-disk"}}
    assert volumes["cdi-scratch-vol"]["persistentVolumeClaim"]["claimName"] == "disk-scratch"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8443, "scheme": "HTTPS"}


def test_upload_pod_for_a_block_claim_and_archive_content() -> None:
    pod = upload_pod(pvc("Block"), None, PodOptions())
    container = pod["spec"]["containers"][0]
    assert container["volumeDevices"] == [{"name": "cdi-data-vol", "devicePath": "/dev/cdi-block-volume"}]
    assert env_of(pod)["DESTINATION"] == "/dev/cdi-block-volume"
    assert env_of(pod)["FILESYSTEM_OVERHEAD"] == "0"
    assert needs_scratch(pvc()) and not needs_scratch(pvc(**{f"{ANN}contentType": "archive"}))
    assert is_upload_pvc(pvc()) and not is_upload_pvc({"metadata": {"annotations": {}}})
    named = pvc(**{"cdi.kubevirt.io/storage.uploadPodName": "cdi-upload-other"})
    assert upload_pod_name(named) == "cdi-upload-other"
    long = pvc()
    long["metadata"]["name"] = "x" * 250
    assert len(upload_pod_name(long)) <= 253


def test_pod_secret_and_certificates_chain_to_their_cas(tmp_path: Path) -> None:
    server_ca, client_ca = new_ca("server-signer"), new_ca("client-signer")
    pod = {"metadata": {"name": "cdi-upload-disk", "namespace": "team", "uid": "pod-uid"}}
    server = issue(server_ca, "cdi-upload-disk.team.svc", hosts=["cdi-upload-disk.team.svc", "cdi-upload-disk"])
    secret = pod_secret(pod, server, client_ca.cert_pem)
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "pod-uid"
    cert = x509.load_pem_x509_certificate(server.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "cdi-upload-disk.team.svc" in san.get_values_for_type(x509.DNSName)
    assert usable(server, server_ca.cert_pem) and not usable(server, client_ca.cert_pem)
    # A TLS client trusting the server CA accepts the certificate under the Service's name.
    (tmp_path / "s.crt").write_bytes(server.cert_pem)
    (tmp_path / "s.key").write_bytes(server.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")


def test_pod_ready_needs_every_container_ready() -> None:
    assert not pod_ready({"status": {}})
    assert not pod_ready({"status": {"containerStatuses": [{"ready": True}, {"ready": False}]}})
    assert pod_ready({"status": {"containerStatuses": [{"ready": True}]}})


def test_upload_data_volume_claim_is_an_upload_target() -> None:
    dv = {"metadata": {"name": "d", "namespace": "ns", "uid": "u1"}, "spec": {"source": {"upload": {}}}}
    body = claim.new_claim(dv, {"accessModes": ["ReadWriteOnce"]}, False)
    ann = body["metadata"]["annotations"]
    assert ann[f"{ANN}upload.target"] == ""
    assert f"{ANN}import.importPodName" not in ann and f"{ANN}import.source" not in ann
    assert "upload" in claim.IMPLEMENTED_SOURCES


def upload_claim(phase: str = "Bound", **annotations: str) -> dict[str, Any]:
    anno = {f"{ANN}upload.target": "", "cdi.kubevirt.io/createdForDataVolume": "u1", **annotations}
    return {"metadata": {"name": "d", "namespace": "ns", "annotations": anno}, "status": {"phase": phase}}


@pytest.mark.parametrize(("annotations", "phase", "event"), [
    ({}, "UploadScheduled", None),
    ({f"{ANN}pod.phase": "Pending"}, "UploadScheduled", ("Normal", "UploadScheduled", "Upload into d scheduled")),
    ({f"{ANN}pod.phase": "Running", f"{ANN}pod.ready": "false"}, "UploadScheduled", None),
    ({f"{ANN}pod.phase": "Running", f"{ANN}pod.ready": "true"}, "UploadReady",
     ("Normal", "UploadReady", "Upload into d ready")),
    ({f"{ANN}pod.phase": "Failed"}, "UploadScheduled", ("Warning", "UploadFailed", "Upload into d failed")),
    ({f"{ANN}pod.phase": "Failed", f"{ANN}import.fatalError": "true"}, "Failed",
     ("Warning", "UploadFailed", "Upload into d failed")),
    ({f"{ANN}pod.phase": "Succeeded"}, "Succeeded", ("Normal", "UploadSucceeded", "Successfully uploaded into d")),
])
def test_upload_phases(annotations: dict[str, str], phase: str, event: tuple[str, str, str] | None) -> None:
    dv = {"metadata": {"name": "d", "namespace": "ns", "uid": "u1"}, "spec": {"source": {"upload": {}}},
          "status": {"phase": "PVCBound"}}
    status, ev = phases.next_status(dv, upload_claim(**annotations), wffc=False)
    assert status["phase"] == phase
    assert (None if ev is None else (ev.type, ev.reason, ev.message)) == event
    assert status["progress"] == ("100.0%" if phase == "Succeeded" else "N/A")
