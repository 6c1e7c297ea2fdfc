"""Per-type rules applied on create and update, as kube-apiserver's registry strategies do (status resets...)."""

from __future__ import annotations

import copy
from typing import Any

from .resources import ResourceInfo

Obj = dict[str, Any]


def prepare_for_create(info: ResourceInfo, obj: Obj) -> None:
    """Reset what a client may not set on create: status for types that own it, defaults kube fills in."""
    key = (info.group, info.plural)
    spec = obj.get("spec")
    if key == ("", "namespaces"):
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "persistentvolumeclaims"):
        obj["status"] = {"phase": "Pending"}
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
    elif key == ("", "persistentvolumes"):
        obj["status"] = {"phase": "Pending"}
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    elif key == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if isinstance(spec, dict):
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("securityContext", {})
            for container in spec.get("containers") or []:
                if isinstance(container, dict):
                    container.setdefault("imagePullPolicy", "IfNotPresent")
                    container.setdefault("terminationMessagePath", "/dev/termination-log")
                    container.setdefault("terminationMessagePolicy", "File")
    elif key == ("storage.k8s.io", "storageclasses"):
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif key == ("", "services"):
        if isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
        obj.setdefault("status", {"loadBalancer": {}})
    elif key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        _fold_string_data(obj)
    elif key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}
    elif info.custom and "status" in info.subresources:
        obj.pop("status", None)


def prepare_for_update(info: ResourceInfo, obj: Obj, old: Obj) -> None:
    """Keep fields a plain update may not change (status lives behind /status)."""
    if info.plural == "secrets" and not info.group:
        _fold_string_data(obj)
    if "status" in info.subresources:
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)
    if (info.group, info.plural) == ("", "namespaces"):
        obj["spec"] = copy.deepcopy(old.get("spec", {}))


def prepare_for_status_update(info: ResourceInfo, obj: Obj, old: Obj) -> Obj:
    """A write to /status changes only `status` (and, for namespaces, nothing else either)."""
    result = copy.deepcopy(old)
    if "status" in obj:
        result["status"] = obj["status"]
    else:
        result.pop("status", None)
    return result


def _fold_string_data(obj: Obj) -> None:
    """Secret `stringData` is write-only: merged into base64 `data` as kube-apiserver does."""
    import base64

    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.setdefault("data", {}) or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
