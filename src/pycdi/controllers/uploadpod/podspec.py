"""The upload worker pod `cdi-upload-<pvc>` and its TLS Secret, built from an upload target PVC (upstream's
makeUploadPodSpec); shapes shared with the importer pod come from importpod.podspec."""

from __future__ import annotations

from typing import Any

from ...api import constants as c
from ...api import upload as u
from ...datapath.config import BLOCK_PATH, DATA_DIR, SCRATCH_DIR
from ..importpod import podspec as ip
from .certs import KeyPair, tls_secret

Obj = dict[str, Any]

TLS_VOLUME_NAME = "tls-config"
SERVER_CERT_FILE = f"{u.TLS_MOUNT_PATH}tls.crt"
SERVER_KEY_FILE = f"{u.TLS_MOUNT_PATH}tls.key"
CLIENT_CA_FILE = f"{u.TLS_MOUNT_PATH}ca.crt"


def is_upload_pvc(pvc: Obj) -> bool:
    """Annotated `cdi.kubevirt.io/storage.upload.target` (any value, as upstream)."""
    return c.ANN_UPLOAD_REQUEST in ((pvc.get("metadata") or {}).get("annotations") or {})


def upload_pod_name(pvc: Obj) -> str:
    """The name the PVC names (`storage.uploadPodName`), else `cdi-upload-<pvc>`."""
    meta = pvc.get("metadata") or {}
    named = (meta.get("annotations") or {}).get(u.ANN_UPLOAD_POD)
    return str(named) if named else ip.generated_name(u.UPLOAD_POD_PREFIX, str(meta.get("name", "")))


def content_type(pvc: Obj) -> str:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return ann.get(c.ANN_CONTENT_TYPE) or c.ContentType.KUBEVIRT.value


def needs_scratch(pvc: Obj) -> bool:
    """Scratch for disk images: the format is known only once bytes arrive, and a qcow2 (vmdk, vdi, vhd(x))
    must be converted from scratch. An archive is extracted straight into the volume and needs none."""
    return content_type(pvc) != c.ContentType.ARCHIVE.value


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "t", "true")


def upload_env(pvc: Obj, config: Obj | None) -> list[Obj]:
    ann: dict[str, str] = pvc["metadata"].get("annotations") or {}
    env: list[Obj] = [
        {"name": "TLS_KEY_FILE", "value": SERVER_KEY_FILE},
        {"name": "TLS_CERT_FILE", "value": SERVER_CERT_FILE},
        {"name": "CLIENT_CERT_FILE", "value": CLIENT_CA_FILE},
        {"name": "FILESYSTEM_OVERHEAD", "value": ip.filesystem_overhead(pvc, config)},
        {"name": "UPLOAD_IMAGE_SIZE", "value": ip.requested_size(pvc)},
        {"name": "CLIENT_NAME", "value": u.UPLOAD_CLIENT_NAME},
        {"name": "PREALLOCATION", "value": "true" if _flag(ann.get(c.ANN_PREALLOCATION_REQUESTED)) else "false"},
        # Upstream listens on every address; here each pod has its own address on one machine, so it listens
        # on that one (where the proxy reaches it).
        {"name": "LISTEN_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        {"name": "LISTEN_PORT", "value": str(u.UPLOAD_SERVER_PORT)},
    ]
    if ip.volume_mode(pvc) == "Block":
        env.append({"name": "DESTINATION", "value": BLOCK_PATH})
    return env


def upload_pod(pvc: Obj, config: Obj | None, options: ip.PodOptions, *, scratch: str | None = None) -> Obj:
    """makeUploadPodSpec: owned by the PVC, OnFailure, the TLS Secret named as the pod mounted at /etc/tls/."""
    meta = pvc["metadata"]
    ann: dict[str, str] = meta.get("annotations") or {}
    name = upload_pod_name(pvc)
    status = (config or {}).get("status") or {}
    container: Obj = {
        "name": u.UPLOAD_CONTAINER_NAME,
        "image": options.image,
        "imagePullPolicy": options.pull_policy,
        "command": ["pycdi", "uploadserver"],
        "env": upload_env(pvc, config),
        "ports": [{"name": "upload", "containerPort": u.UPLOAD_SERVER_PORT, "protocol": "TCP"}],
        # Read by a kubelet; the proxy also tolerates a server that is still starting.
        "readinessProbe": {"httpGet": {"path": u.HEALTHZ_PATH, "port": u.UPLOAD_SERVER_PORT, "scheme": "HTTPS"},
                           "initialDelaySeconds": 2, "periodSeconds": 5},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    resources = status.get("defaultPodResourceRequirements")
    if resources:
        container["resources"] = resources
    volumes: list[Obj] = [
        {"name": TLS_VOLUME_NAME, "secret": {"secretName": name}},
        {"name": ip.DATA_VOLUME_NAME, "persistentVolumeClaim": {"claimName": meta["name"], "readOnly": False}},
    ]
    mounts: list[Obj] = [{"name": TLS_VOLUME_NAME, "mountPath": u.TLS_MOUNT_PATH}]
    if ip.volume_mode(pvc) == "Block":
        container["volumeDevices"] = [{"name": ip.DATA_VOLUME_NAME, "devicePath": BLOCK_PATH}]
    else:
        mounts.append({"name": ip.DATA_VOLUME_NAME, "mountPath": DATA_DIR})
    if scratch:
        volumes.append({"name": ip.SCRATCH_VOLUME_NAME,
                        "persistentVolumeClaim": {"claimName": scratch, "readOnly": False}})
        mounts.append({"name": ip.SCRATCH_VOLUME_NAME, "mountPath": SCRATCH_DIR})
    container["volumeMounts"] = mounts
    pod_annotations = {u.ANN_CREATED_BY_UPLOAD: "yes"}
    pod_annotations.update({k: ann[k] for k in ip.PASSTHROUGH_ANNOTATIONS if k in ann})
    spec: Obj = {"containers": [container], "volumes": volumes, "restartPolicy": "OnFailure",
                 "enableServiceLinks": False}
    if ann.get(c.ANN_POD_PRIORITY_CLASS_NAME):
        spec["priorityClassName"] = ann[c.ANN_POD_PRIORITY_CLASS_NAME]
    if ann.get(c.ANN_POD_SERVICE_ACCOUNT):
        spec["serviceAccountName"] = ann[c.ANN_POD_SERVICE_ACCOUNT]
    if status.get("imagePullSecrets"):
        spec["imagePullSecrets"] = status["imagePullSecrets"]
    labels = {**ip.APP_LABELS, c.ANN_PREFIX: u.UPLOAD_SERVER_LABEL,
              u.LABEL_SERVICE: u.service_name(name), u.LABEL_UPLOAD_TARGET: str(meta.get("uid", ""))}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": meta["namespace"], "labels": labels, "annotations": pod_annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }


def pod_secret(pod: Obj, server: KeyPair, client_ca_pem: bytes) -> Obj:
    """The pod's serving certificate and key and the client CA it trusts; owned by the pod (gone with it)."""
    meta = pod["metadata"]
    owner = {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"], "controller": True,
             "blockOwnerDeletion": True}
    secret = tls_secret(meta["name"], meta["namespace"], server, {"ca.crt": client_ca_pem}, owner)
    secret["metadata"]["annotations"] = {u.ANN_CREATED_BY_UPLOAD: "yes"}
    secret["metadata"]["labels"][c.ANN_PREFIX] = u.UPLOAD_SERVER_LABEL
    return secret
