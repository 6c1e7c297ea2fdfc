"""The importer pod, its environment and the scratch PVC, built from a PVC's import annotations (upstream's shapes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ...api import constants as c
from ...api.quantity import quantity_bytes
from ...api.sizes import required_space, usable_space
from ...datapath.config import BLOCK_PATH, CERT_DIR, DATA_DIR, SCRATCH_DIR, SECRET_EXTRA_HEADERS_DIR

Obj = dict[str, Any]

DEFAULT_IMAGE = "quay.io/pycdi/pycdi-worker:latest"
DEFAULT_METRICS_PORT = 8443
CONTAINER_NAME = "importer"
IMPORTER_PREFIX = "importer"
SCRATCH_SUFFIX = "scratch"
APP_LABELS = {"app": "containerized-data-importer"}
POD_LABELS = {**APP_LABELS, "cdi.kubevirt.io": "importer", "prometheus.cdi.kubevirt.io": "true"}
DATA_VOLUME_NAME = "cdi-data-vol"
SCRATCH_VOLUME_NAME = "cdi-scratch-vol"
CERT_VOLUME_NAME = "cdi-cert-vol"
SECRET_HEADERS_VOLUME = "cdi-secret-extra-headers-vol-{}"
#: Upstream's limit for generated names (a DNS-1123 subdomain).
MAX_NAME = 253
ALIGN = 1 << 20
SOURCE_NONE = "none"
SOURCE_HTTP = "http"
SOURCE_REGISTRY = "registry"
#: Pod annotations copied from the PVC (networking and sidecars, `doc/datavolume-annotations.md`).
PASSTHROUGH_ANNOTATIONS = (c.ANN_POD_NETWORK, c.ANN_POD_MULTUS_DEFAULT_NETWORK, c.ANN_SIDECAR_ISTIO,
                           c.ANN_SIDECAR_LINKERD)


@dataclass(frozen=True)
class PodOptions:
    """What the controller's configuration adds to every importer pod."""

    image: str = DEFAULT_IMAGE
    pull_policy: str = "IfNotPresent"
    metrics_port: int = DEFAULT_METRICS_PORT


def generated_name(base: str, suffix: str, limit: int = MAX_NAME) -> str:
    """`base-suffix`, or when too long a shortened form keeping a hash of the whole (openshift's naming rule)."""
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = limit - len(suffix) - 10
    if room < 0:
        return f"{base[:max(0, limit - 9)]}-{digest}"[:limit]
    return f"{base[:room]}-{digest}-{suffix}"


def import_pod_name(pvc: Obj) -> str:
    """The name the PVC names (`storage.import.importPodName`), else `importer-<pvc>`."""
    meta = pvc.get("metadata") or {}
    named = (meta.get("annotations") or {}).get(c.ANN_IMPORT_POD)
    return str(named) if named else generated_name(IMPORTER_PREFIX, str(meta.get("name", "")))


def scratch_name(pvc: Obj) -> str:
    return generated_name(str(pvc["metadata"]["name"]), SCRATCH_SUFFIX)


def volume_mode(pvc: Obj) -> str:
    return str((pvc.get("spec") or {}).get("volumeMode") or "Filesystem")


def storage_class(pvc: Obj) -> str:
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def requested_size(pvc: Obj) -> str:
    return str((((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage") or "")


def filesystem_overhead(pvc: Obj, config: Obj | None) -> str:
    """Upstream's GetFilesystemOverhead: "0" for Block, else the class's value from CDIConfig status, else global."""
    if volume_mode(pvc) != "Filesystem":
        return "0"
    overhead = ((config or {}).get("status") or {}).get("filesystemOverhead") or {}
    per_class = overhead.get("storageClass") or {}
    return str(per_class.get(storage_class(pvc)) or overhead.get("global") or c.DEFAULT_FS_OVERHEAD)


def owner_uid(pvc: Obj) -> str:
    """The OWNER_UID label of the progress metric: the PVC's single owner (its DataVolume), else the PVC."""
    refs = (pvc.get("metadata") or {}).get("ownerReferences") or []
    return str(refs[0].get("uid", "")) if len(refs) == 1 else str(pvc["metadata"].get("uid", ""))


def _indexed(annotations: dict[str, str], prefix: str) -> list[str]:
    """Values of `prefix`, `prefix.0`, `prefix.1`... in index order (upstream writes `%s.%d`)."""
    found: list[tuple[int, str, str]] = []
    for key, value in annotations.items():
        if key == prefix:
            found.append((-1, key, value))
        elif key.startswith(prefix + "."):
            tail = key[len(prefix) + 1:]
            found.append((int(tail) if tail.isdigit() else 1 << 30, key, value))
    return [value for _, _, value in sorted(found) if value]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "t", "true")


def registry_host(url: str) -> str:
    """host[:port] of a `docker://` / `oci-archive://` image reference (or a bare one)."""
    rest = url.split("://", 1)[1] if "://" in url else url
    return rest.split("/", 1)[0]


def insecure_tls(ann: dict[str, str], config: Obj | None) -> bool:
    """insecureSkipVerify on an HTTP source; for a registry, its host listed in CDIConfig's insecureRegistries
    (upstream's IsInsecureTLS)."""
    if _flag(ann.get(c.ANN_INSECURE_SKIP_VERIFY)):
        return True
    if (ann.get(c.ANN_SOURCE) or SOURCE_HTTP) != SOURCE_REGISTRY:
        return False
    listed = ((config or {}).get("spec") or {}).get("insecureRegistries") or []
    host = registry_host(ann.get(c.ANN_ENDPOINT, ""))
    return bool(host) and host in listed


def importer_env(pvc: Obj, config: Obj | None, options: PodOptions) -> list[Obj]:
    """The importer container's environment, named as upstream's (`makeImportEnv`) plus pycdi's own."""
    ann: dict[str, str] = (pvc["metadata"].get("annotations") or {})
    source = ann.get(c.ANN_SOURCE) or SOURCE_HTTP
    env: list[Obj] = [
        {"name": "IMPORTER_SOURCE", "value": source},
        {"name": "IMPORTER_ENDPOINT", "value": ann.get(c.ANN_ENDPOINT, "") if source != SOURCE_NONE else ""},
        {"name": "IMPORTER_CONTENTTYPE", "value": ann.get(c.ANN_CONTENT_TYPE) or c.ContentType.KUBEVIRT.value},
        {"name": "IMPORTER_IMAGE_SIZE", "value": requested_size(pvc)},
        {"name": "OWNER_UID", "value": owner_uid(pvc)},
        {"name": "FILESYSTEM_OVERHEAD", "value": filesystem_overhead(pvc, config)},
        {"name": "INSECURE_TLS", "value": "true" if insecure_tls(ann, config) else "false"},
        {"name": "PREALLOCATION", "value": "true" if _flag(ann.get(c.ANN_PREALLOCATION_REQUESTED)) else "false"},
        {"name": "IMPORTER_CHECKSUM", "value": ann.get(c.ANN_CHECKSUM, "")},
        {"name": "IMPORTER_VOLUME_MODE", "value": volume_mode(pvc)},
        {"name": "PYCDI_METRICS_PORT", "value": str(options.metrics_port)},
        # The progress endpoint listens on the pod's own address, where the controller scrapes it.
        {"name": "PYCDI_METRICS_ADDR", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
    ]
    if ann.get(c.ANN_REGISTRY_IMAGE_ARCHITECTURE):
        env.append({"name": "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE", "value": ann[c.ANN_REGISTRY_IMAGE_ARCHITECTURE]})
    if ann.get(c.ANN_REQUIRES_DIRECT_IO) == "true":
        env.append({"name": "CACHE_MODE", "value": "TRYNONE"})
    proxy = ((config or {}).get("status") or {}).get("importProxy") or {}
    for name, key in (("http_proxy", "HTTPProxy"), ("https_proxy", "HTTPSProxy"), ("no_proxy", "noProxy")):
        if proxy.get(key):
            env.append({"name": name, "value": str(proxy[key])})
    secret = ann.get(c.ANN_SECRET, "")
    if secret and source != SOURCE_NONE:
        for name, key in (("IMPORTER_ACCESS_KEY_ID", "accessKeyId"), ("IMPORTER_SECRET_KEY", "secretKey")):
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    if ann.get(c.ANN_CERT_CONFIG_MAP) and source != SOURCE_NONE:
        env.append({"name": "IMPORTER_CERT_DIR", "value": CERT_DIR})
    for index, header in enumerate(_indexed(ann, c.ANN_EXTRA_HEADERS)):
        env.append({"name": f"IMPORTER_EXTRA_HEADER_{index}", "value": header})
    return env


def requires_scratch(pvc: Obj) -> bool:
    """Scratch up front only when the PVC says so (the importer asks for it lazily otherwise; DESIGN §6)."""
    return _flag((pvc["metadata"].get("annotations") or {}).get(c.ANN_REQUIRES_SCRATCH))


def importer_pod(pvc: Obj, config: Obj | None, options: PodOptions, *, scratch: str | None = None) -> Obj:
    """`makeImporterPodSpec`: owned by the PVC, OnFailure, the target at /data or /dev/cdi-block-volume."""
    meta = pvc["metadata"]
    ann: dict[str, str] = meta.get("annotations") or {}
    source = ann.get(c.ANN_SOURCE) or SOURCE_HTTP
    status = (config or {}).get("status") or {}
    container: Obj = {
        "name": CONTAINER_NAME,
        "image": options.image,
        "imagePullPolicy": options.pull_policy,
        "command": ["pycdi", "importer"],
        "env": importer_env(pvc, config, options),
        "ports": [{"name": "metrics", "containerPort": options.metrics_port, "protocol": "TCP"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    resources = status.get("defaultPodResourceRequirements")
    if resources:
        container["resources"] = resources
    volumes: list[Obj] = [{"name": DATA_VOLUME_NAME,
                           "persistentVolumeClaim": {"claimName": meta["name"], "readOnly": False}}]
    mounts: list[Obj] = []
    if volume_mode(pvc) == "Block":
        container["volumeDevices"] = [{"name": DATA_VOLUME_NAME, "devicePath": BLOCK_PATH}]
    else:
        mounts.append({"name": DATA_VOLUME_NAME, "mountPath": DATA_DIR})
    if scratch:
        volumes.append({"name": SCRATCH_VOLUME_NAME, "persistentVolumeClaim": {"claimName": scratch,
                                                                                "readOnly": False}})
        mounts.append({"name": SCRATCH_VOLUME_NAME, "mountPath": SCRATCH_DIR})
    cert = ann.get(c.ANN_CERT_CONFIG_MAP, "")
    if cert and source != SOURCE_NONE:
        volumes.append({"name": CERT_VOLUME_NAME, "configMap": {"name": cert}})
        mounts.append({"name": CERT_VOLUME_NAME, "mountPath": CERT_DIR})
    for index, secret in enumerate(_indexed(ann, c.ANN_SECRET_EXTRA_HEADERS)):
        name = SECRET_HEADERS_VOLUME.format(index)
        volumes.append({"name": name, "secret": {"secretName": secret}})
        mounts.append({"name": name, "mountPath": f"{SECRET_EXTRA_HEADERS_DIR}/{index}"})
    if mounts:
        container["volumeMounts"] = mounts
    pod_annotations = {c.ANN_CREATED_BY: "yes"}
    pod_annotations.update({k: ann[k] for k in PASSTHROUGH_ANNOTATIONS if k in ann})
    spec: Obj = {
        "containers": [container],
        "volumes": volumes,
        "restartPolicy": "OnFailure",
        "enableServiceLinks": False,
    }
    priority = ann.get(c.ANN_POD_PRIORITY_CLASS_NAME)
    if priority:
        spec["priorityClassName"] = priority
    account = ann.get(c.ANN_POD_SERVICE_ACCOUNT)
    if account:
        spec["serviceAccountName"] = account
    if status.get("imagePullSecrets"):
        spec["imagePullSecrets"] = status["imagePullSecrets"]
    labels = {**(meta.get("labels") or {}), **POD_LABELS}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": import_pod_name(pvc), "namespace": meta["namespace"], "labels": labels,
            "annotations": pod_annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }


def scratch_pvc(pvc: Obj, pod: Obj, config: Obj | None) -> Obj:
    """`createScratchPersistentVolumeClaim`: RWO Filesystem, owned by the pod, sized for the target's usable space."""
    meta = pvc["metadata"]
    status = (config or {}).get("status") or {}
    class_name = str(status.get("scratchSpaceStorageClass") or "") or storage_class(pvc)
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}
    if class_name:
        spec["storageClassName"] = class_name
    scratch_shape = {"spec": {"storageClassName": class_name, "volumeMode": "Filesystem"}}
    scratch_overhead = float(filesystem_overhead(scratch_shape, config))
    target_overhead = float(filesystem_overhead(pvc, config))
    size = required_space(scratch_overhead, usable_space(target_overhead, quantity_bytes(requested_size(pvc))))
    spec["resources"] = {"requests": {"storage": str(-(-size // ALIGN) * ALIGN)}}
    # kubevirt.io annotations travel, CDI's do not: they would start another import into the scratch claim.
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if "kubevirt.io" in k and c.ANN_PREFIX not in k}
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": scratch_name(pvc), "namespace": meta["namespace"],
            "labels": {**APP_LABELS, "velero.io/exclude-from-backup": "true"},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                 "uid": pod["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }
