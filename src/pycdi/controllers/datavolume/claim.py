"""The PVC a DataVolume creates: its labels, upstream's annotations for the import controller, its owner."""

from __future__ import annotations

import copy
from typing import Any

from ...api import constants as c
from . import phases

Obj = dict[str, Any]
CDI_LABEL = ("app", "containerized-data-importer")
FILLING_UP_LABEL = ("alerts.k8s.io/KubePersistentVolumeFillingUp", "disabled")
RECOMMENDED_LABELS = {"app.kubernetes.io/managed-by": "cdi-controller", "app.kubernetes.io/component": "storage"}
SOURCE_HTTP = "http"
SOURCE_REGISTRY = "registry"
SOURCE_S3 = "s3"
SOURCE_NONE = "none"
#: The sources the import path implements today (the others are refused at admission or not written yet).
IMPLEMENTED_SOURCES = ("http", "registry", "s3", "blank", "upload")
#: Sources another controller owns (clone_controller.py): the import controller leaves those DataVolumes alone.
CLONE_SOURCES = ("pvc",)
#: Annotations copied from the DV only once it succeeded (upstream's delayedAnnotations).
DELAYED_ANNOTATIONS = (c.ANN_POPULATED_FOR,)


def source_kind(dv: Obj) -> str | None:
    """The one source variant set (`http`, `blank`, `registry`, ...), `sourceRef`, or None."""
    spec = dv.get("spec") or {}
    if spec.get("sourceRef") is not None:
        return "sourceRef"
    source = spec.get("source") or {}
    return next((k for k, v in source.items() if v is not None), None)


def import_pod_name(pvc_name: str) -> str:
    return f"importer-{pvc_name}"


def source_annotations(dv: Obj) -> dict[str, str]:
    """UpdateHTTPAnnotations / blank: what tells the import controller where the data comes from."""
    source = (dv.get("spec") or {}).get("source") or {}
    out: dict[str, str] = {}
    http = source.get("http")
    if http is not None:
        out[c.ANN_ENDPOINT] = http.get("url", "")
        out[c.ANN_SOURCE] = SOURCE_HTTP
        if http.get("secretRef"):
            out[c.ANN_SECRET] = http["secretRef"]
        if http.get("certConfigMap"):
            out[c.ANN_CERT_CONFIG_MAP] = http["certConfigMap"]
        if http.get("checksum"):
            out[c.ANN_CHECKSUM] = http["checksum"]
        if http.get("insecureSkipVerify"):
            out[c.ANN_INSECURE_SKIP_VERIFY] = "true"
        # Upstream numbers them: `...extraHeaders.0`, `...extraHeaders.1`, ...
        for i, header in enumerate(http.get("extraHeaders") or []):
            out[f"{c.ANN_EXTRA_HEADERS}.{i}"] = header
        for i, secret in enumerate(http.get("secretExtraHeaders") or []):
            out[f"{c.ANN_SECRET_EXTRA_HEADERS}.{i}"] = secret
    elif source.get("registry") is not None:
        out.update(_registry_annotations(source["registry"]))
    elif source.get("s3") is not None:
        s3 = source["s3"]
        out[c.ANN_ENDPOINT] = s3.get("url", "")
        out[c.ANN_SOURCE] = SOURCE_S3
        if s3.get("secretRef"):
            out[c.ANN_SECRET] = s3["secretRef"]
        if s3.get("certConfigMap"):
            out[c.ANN_CERT_CONFIG_MAP] = s3["certConfigMap"]
    elif source.get("blank") is not None:
        out[c.ANN_SOURCE] = SOURCE_NONE
    elif source.get("upload") is not None:
        out[c.ANN_UPLOAD_REQUEST] = ""  # the upload controller takes the claim from here
    return out


def _registry_annotations(registry: Obj) -> dict[str, str]:
    """UpdateRegistryAnnotations: the image (URL or image stream), pull method, credentials, CA, architecture."""
    out = {c.ANN_SOURCE: SOURCE_REGISTRY}
    if registry.get("pullMethod"):
        out[c.ANN_REGISTRY_IMPORT_METHOD] = registry["pullMethod"]
    if registry.get("url"):
        out[c.ANN_ENDPOINT] = registry["url"]
    elif registry.get("imageStream"):
        out[c.ANN_ENDPOINT] = registry["imageStream"]
        out[c.ANN_REGISTRY_IMAGE_STREAM] = "true"
    if registry.get("secretRef"):
        out[c.ANN_SECRET] = registry["secretRef"]
    if registry.get("certConfigMap"):
        out[c.ANN_CERT_CONFIG_MAP] = registry["certConfigMap"]
    architecture = (registry.get("platform") or {}).get("architecture")
    if architecture:
        out[c.ANN_REGISTRY_IMAGE_ARCHITECTURE] = architecture
    return out


def new_claim(dv: Obj, spec: Obj, preallocation: bool) -> Obj:
    """newPersistentVolumeClaim for an import: named as the DV, in its namespace, controlled by it."""
    meta = dv["metadata"]
    dv_spec = dv.get("spec") or {}
    labels = dict(RECOMMENDED_LABELS)
    labels[CDI_LABEL[0]] = CDI_LABEL[1]
    if spec.get("volumeMode", "Filesystem") != "Block":
        labels[FILLING_UP_LABEL[0]] = FILLING_UP_LABEL[1]
    labels.update(meta.get("labels") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations[c.ANN_POD_RESTARTS] = "0"
    annotations[c.ANN_CONTENT_TYPE] = "archive" if dv_spec.get("contentType") == "archive" else "kubevirt"
    if dv_spec.get("priorityClassName"):
        annotations[c.ANN_POD_PRIORITY_CLASS_NAME] = dv_spec["priorityClassName"]
    if dv_spec.get("serviceAccountName"):
        annotations[c.ANN_POD_SERVICE_ACCOUNT] = dv_spec["serviceAccountName"]
    annotations[c.ANN_PREALLOCATION_REQUESTED] = "true" if preallocation else "false"
    annotations[phases.ANN_CREATED_FOR_DATA_VOLUME] = meta.get("uid", "")
    annotations.update(source_annotations(dv))
    if c.ANN_UPLOAD_REQUEST not in annotations:
        annotations[c.ANN_IMPORT_POD] = import_pod_name(meta["name"])
    for key in DELAYED_ANNOTATIONS:
        annotations.pop(key, None)
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""), "labels": labels,
                     "annotations": annotations, "ownerReferences": [owner_reference(dv)]},
        "spec": copy.deepcopy(spec),
    }


def owner_reference(dv: Obj) -> Obj:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "name": dv["metadata"]["name"],
            "uid": dv["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def controlled_by(pvc: Obj, dv: Obj) -> bool:
    uid = dv["metadata"].get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in (pvc.get("metadata") or {}).get("ownerReferences") or [])


def controller_of(pvc: Obj) -> Obj | None:
    return next((ref for ref in (pvc.get("metadata") or {}).get("ownerReferences") or [] if ref.get("controller")),
                None)
