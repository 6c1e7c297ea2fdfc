"""The host-assisted clone's worker pods and the Secret they authenticate with and encrypt by (shapes after
upstream's clone source pod; the target runs `pycdi cloner target` where upstream runs its upload server)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...datapath.clone import certs
from ..importpod import podspec as ip
from . import common as cm

Obj = dict[str, Any]
SECRET_KEY = "secret"
#: The clone's certificate (served by the target, pinned by the source) and its key (in the claim's namespace only:
#: the target's).
TLS_CERT_KEY, TLS_KEY_KEY = "tls.crt", "tls.key"
SOURCE_CONTAINER = "cdi-clone-source"
TARGET_CONTAINER = "cdi-clone-target"
DATA_VOLUME = "cdi-data-vol"
COMPONENT_LABEL = "cdi.kubevirt.io"
PROMETHEUS_LABEL = ("prometheus.cdi.kubevirt.io", "true")


def target_pod_name(pvc: Obj) -> str:
    return ip.generated_name(cl.TARGET_POD_PREFIX, cm.name_of(pvc))


def secret_name(pvc: Obj) -> str:
    return f"cdi-clone-{cm.uid_of(pvc)}"


def owner_uid(pvc: Obj) -> str:
    """The progress metric's label: the clone's owner (the populated target), else the claim itself."""
    return cm.annots(pvc).get(c.ANN_OWNER_UID) or cm.uid_of(pvc)


def _controller_ref(pvc: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": cm.name_of(pvc), "uid": cm.uid_of(pvc),
            "controller": True, "blockOwnerDeletion": True}


def complete_clone_data(data: Mapping[str, str]) -> dict[str, str]:
    """The clone's shared secret, certificate and key: those in `data` kept, what is missing made (a certificate
    without its key, or near its end, is made anew: a Secret from before the stream was encrypted gets its pair)."""
    out = {SECRET_KEY: data.get(SECRET_KEY) or secrets.token_hex(32)}
    cert, key = data.get(TLS_CERT_KEY), data.get(TLS_KEY_KEY)
    if not cert or not key or not certs.usable(cert, key):
        cert, key = certs.new_certificate()
    out[TLS_CERT_KEY], out[TLS_KEY_KEY] = cert, key
    return out


def clone_secret(pvc: Obj, namespace: str, data: Mapping[str, str]) -> Obj:
    """One clone's Secret in one namespace (owned by the claim when that is its namespace): the shared secret and
    the certificate; the certificate's key only in the claim's namespace, where the target runs."""
    meta: Obj = {"name": secret_name(pvc), "namespace": namespace,
                 "labels": {cm.CDI_LABEL[0]: cm.CDI_LABEL[1], **cm.owned_by_label(cm.uid_of(pvc))}}
    keys = [SECRET_KEY, TLS_CERT_KEY]
    if namespace == cm.namespace_of(pvc):
        meta["ownerReferences"] = [_controller_ref(pvc)]
        keys.append(TLS_KEY_KEY)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": {k: data[k] for k in keys}}


def _secret_env(pvc: Obj, *, target: bool) -> list[Obj]:
    keys = [("CLONER_SECRET", SECRET_KEY), ("CLONER_TLS_CERT", TLS_CERT_KEY)]
    if target:
        keys.append(("CLONER_TLS_KEY", TLS_KEY_KEY))
    return [{"name": env, "valueFrom": {"secretKeyRef": {"name": secret_name(pvc), "key": key}}}
            for env, key in keys]


def _attach(container: Obj, block: bool, path: str, read_only: bool) -> None:
    if block:
        container["volumeDevices"] = [{"name": DATA_VOLUME, "devicePath": path}]
    else:
        container["volumeMounts"] = [{"name": DATA_VOLUME, "mountPath": path, "readOnly": read_only}]


def _spec(pvc: Obj, container: Obj, claim: str, read_only: bool, config: Obj | None) -> Obj:
    resources = (cm.status(config)).get("defaultPodResourceRequirements")
    if resources:
        container["resources"] = resources
    spec: Obj = {"containers": [container], "restartPolicy": "OnFailure", "enableServiceLinks": False,
                 "volumes": [{"name": DATA_VOLUME,
                              "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}]}
    priority = cm.annots(pvc).get(c.ANN_POD_PRIORITY_CLASS_NAME)
    if priority:
        spec["priorityClassName"] = priority
    pull = cm.status(config).get("imagePullSecrets")
    if pull:
        spec["imagePullSecrets"] = pull
    return spec


def target_pod(pvc: Obj, config: Obj | None, options: ip.PodOptions) -> Obj:
    """The worker receiving into the claim, beside it and owned by it."""
    block = cm.volume_mode(pvc) == cm.BLOCK
    destination = cl.TARGET_BLOCK_PATH if block else cl.TARGET_MOUNT_PATH
    container: Obj = {
        "name": TARGET_CONTAINER, "image": options.image, "imagePullPolicy": options.pull_policy,
        "command": ["pycdi", "cloner", "target"],
        "env": [
            {"name": "LISTEN_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "LISTEN_PORT", "value": str(cl.CLONER_PORT)},
            {"name": "DESTINATION", "value": destination},
            {"name": "VOLUME_MODE", "value": "block" if block else "filesystem"},
            {"name": "CONTENTTYPE", "value": cm.content_type(pvc)},
            {"name": "PREALLOCATION", "value": "true" if cm.flag(cm.annots(pvc).get(c.ANN_PREALLOCATION_REQUESTED))
             else "false"},
            {"name": "OWNER_UID", "value": owner_uid(pvc)},
            *_secret_env(pvc, target=True),
        ],
        "ports": [{"name": "clone", "containerPort": cl.CLONER_PORT, "protocol": "TCP"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    _attach(container, block, destination, read_only=False)
    labels = {cm.CDI_LABEL[0]: cm.CDI_LABEL[1], COMPONENT_LABEL: TARGET_CONTAINER}
    if cm.labels(pvc).get(cl.LABEL_OWNED_BY_UID):
        labels[cl.LABEL_OWNED_BY_UID] = cm.labels(pvc)[cl.LABEL_OWNED_BY_UID]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": target_pod_name(pvc), "namespace": cm.namespace_of(pvc), "labels": labels,
                         "annotations": {c.ANN_CREATED_BY: "yes"}, "ownerReferences": [_controller_ref(pvc)]},
            "spec": _spec(pvc, container, cm.name_of(pvc), False, config)}


def source_pod(pvc: Obj, source: Obj, target_ip: str, config: Obj | None, options: ip.PodOptions) -> Obj:
    """The worker reading the source claim (read-only), in the source's namespace: `<claim uid>-source-pod`."""
    block = cm.volume_mode(source) == cm.BLOCK
    mount = cl.SOURCE_BLOCK_PATH if block else cl.SOURCE_MOUNT_PATH
    host = f"[{target_ip}]" if ":" in target_ip else target_ip
    container: Obj = {
        "name": SOURCE_CONTAINER, "image": options.image, "imagePullPolicy": options.pull_policy,
        "command": ["pycdi", "cloner", "source"],
        "env": [
            {"name": "UPLOAD_URL", "value": f"tcp://{host}:{cl.CLONER_PORT}"},
            {"name": "OWNER_UID", "value": owner_uid(pvc)},
            {"name": "VOLUME_MODE", "value": "block" if block else "filesystem"},
            {"name": "MOUNT_POINT", "value": mount},
            {"name": "CONTENTTYPE", "value": cm.content_type(pvc)},
            {"name": "PYCDI_METRICS_PORT", "value": str(options.metrics_port)},
            {"name": "PYCDI_METRICS_ADDR", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                       "fieldPath": "status.podIP"}}},
            *_secret_env(pvc, target=False),
        ],
        "ports": [{"name": "metrics", "containerPort": options.metrics_port, "protocol": "TCP"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    _attach(container, block, mount, read_only=True)
    namespace = cm.namespace_of(source)
    meta: Obj = {"name": cm.source_pod_name(pvc), "namespace": namespace,
                 "labels": {cm.CDI_LABEL[0]: cm.CDI_LABEL[1], COMPONENT_LABEL: SOURCE_CONTAINER,
                            PROMETHEUS_LABEL[0]: PROMETHEUS_LABEL[1], **cm.owned_by_label(cm.uid_of(pvc))},
                 "annotations": {c.ANN_CREATED_BY: "yes"}}
    if namespace == cm.namespace_of(pvc):
        meta["ownerReferences"] = [_controller_ref(pvc)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": _spec(pvc, container, cm.name_of(source), True, config)}
