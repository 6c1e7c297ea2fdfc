"""PersistentVolume and PersistentVolumeClaim validation (core/v1), with kube's rules and messages."""

from __future__ import annotations

import copy
import json
import posixpath
from decimal import Decimal
from typing import Any

from pycdi.api.quantity import QuantityError, parse

from ..errors import Cause
from .metadata import as_dict, as_list, as_str, validate_label_selector
from .names import (
    forbidden,
    immutable,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    key,
    name_is_dns_label,
    name_is_dns_subdomain,
    not_supported,
    required,
)

Obj = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
PV_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
)
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def quantity(value: Any, path: str) -> tuple[Decimal | None, list[Cause]]:
    """A quantity's value, or the cause kube's decoder would have refused it with."""
    try:
        return parse(value).value, []
    except QuantityError as exc:
        return None, [invalid(path, as_str(value), str(exc))]


def positive_quantity(value: Any, path: str) -> list[Cause]:
    try:
        q = parse(value)
    except QuantityError as exc:
        return [invalid(path, as_str(value), str(exc))]
    return [] if q.value > 0 else [invalid(path, str(q), "must be greater than zero")]


def spec_diff(old: Any, new: Any, type_name: str) -> str:
    """A short rendition of the go-cmp diff kube appends to 'immutable spec' messages."""
    old_d, new_d = as_dict(old), as_dict(new)
    lines = [f"  {type_name}{{"]
    for k in sorted(set(old_d) | set(new_d)):
        if old_d.get(k) != new_d.get(k):
            go_name = k[:1].upper() + k[1:]
            if k in old_d:
                lines.append(f"- \t{go_name}: {json.dumps(old_d[k], sort_keys=True)},")
            if k in new_d:
                lines.append(f"+ \t{go_name}: {json.dumps(new_d[k], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines)


def _access_modes(modes: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    rwop = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            rwop = True
        else:
            other = True
    if rwop and other:
        causes.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _no_backsteps(value: str, path: str) -> list[Cause]:
    if ".." in value.replace("\\", "/").split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def _pv_source(name: str, src: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if name in ("hostPath", "local"):
        p = as_str(src.get("path"))
        if not p:
            return [required(f"{path}.path")]
        causes += _no_backsteps(p, f"{path}.path")
        if name == "hostPath" and src.get("type") not in (
            None,
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ):
            causes.append(
                not_supported(
                    f"{path}.type",
                    src.get("type"),
                    (
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ),
                )
            )
    elif name == "nfs":
        if not as_str(src.get("server")):
            causes.append(required(f"{path}.server"))
        p = as_str(src.get("path"))
        if not p:
            causes.append(required(f"{path}.path"))
        elif not p.startswith("/"):
            causes.append(invalid(f"{path}.path", p, "must be an absolute path"))
    elif name == "csi":
        driver = as_str(src.get("driver"))
        if not driver:
            causes.append(required(f"{path}.driver"))
        if len(driver) > 63:
            causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "field": f"{path}.driver",
                    "message": "Too long: may not be more than 63 bytes",
                }
            )
        causes += [invalid(f"{path}.driver", driver, m) for m in is_dns1123_subdomain(driver.lower())]
        if not as_str(src.get("volumeHandle")):
            causes.append(required(f"{path}.volumeHandle"))
    return causes


def _node_affinity(affinity: Obj, path: str) -> tuple[bool, list[Cause]]:
    req = affinity.get("required")
    if not isinstance(req, dict):
        return False, [required(f"{path}.required", "must specify required node constraints")]
    terms = as_list(req.get("nodeSelectorTerms"))
    if not terms:
        return True, [
            required(f"{path}.required.nodeSelectorTerms", "must have at least one node selector term")
        ]
    causes: list[Cause] = []
    operators = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
    for i, term in enumerate(terms):
        for j, expr in enumerate(as_list(as_dict(term).get("matchExpressions"))):
            epath = f"{path}.required.nodeSelectorTerms[{i}].matchExpressions[{j}]"
            expr = as_dict(expr)
            op, values = expr.get("operator"), as_list(expr.get("values"))
            if op in ("In", "NotIn") and not values:
                causes.append(
                    required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
            elif op in ("Exists", "DoesNotExist") and values:
                causes.append(
                    forbidden(
                        f"{epath}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
            elif op not in operators:
                causes.append(not_supported(f"{epath}.operator", op, operators))
    return True, causes


def validate_pv(obj: Obj) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes: list[Cause] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        causes.append(required("spec.accessModes"))
    causes += _access_modes(modes, "spec.accessModes")
    capacity = as_dict(spec.get("capacity"))
    if not capacity:
        causes.append(required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        causes.append(
            not_supported("spec.capacity", {k: as_str(v) for k, v in capacity.items()}, ("storage",))
        )
    for res, qty in capacity.items():
        causes += positive_quantity(qty, key("spec.capacity", res))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        causes.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    has_affinity = False
    if isinstance(spec.get("nodeAffinity"), dict):
        has_affinity, errs = _node_affinity(spec["nodeAffinity"], "spec.nodeAffinity")
        causes += errs
    count = 0
    for name in PV_SOURCES:
        src = spec.get(name)
        if src is None:
            continue
        if count > 0 and name != "flexVolume":
            causes.append(forbidden(f"spec.{name}", "may not specify more than 1 volume type"))
            continue
        count += 1
        causes += _pv_source(name, as_dict(src), f"spec.{name}")
        if name == "local" and not has_affinity:
            causes.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    if count == 0:
        causes.append(required("spec", "must specify a volume type"))
    host_path = spec.get("hostPath")
    if (
        isinstance(host_path, dict)
        and posixpath.normpath(as_str(host_path.get("path")) or ".") == "/"
        and policy == "Recycle"
    ):
        causes.append(
            forbidden(
                "spec.persistentVolumeReclaimPolicy", "may not be 'recycle' for a hostPath mount of '/'"
            )
        )
    sc = as_str(spec.get("storageClassName"))
    if sc:
        causes += [invalid("spec.storageClassName", sc, m) for m in name_is_dns_subdomain(sc, False)]
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    return causes


def validate_pv_update(obj: Obj, old: Obj) -> list[Cause]:
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    causes: list[Cause] = []
    new_src = {k: spec[k] for k in PV_SOURCES if k in spec}
    old_src = {k: old_spec[k] for k in PV_SOURCES if k in old_spec}
    old_csi, new_csi = as_dict(old_src.get("csi")), as_dict(new_src.get("csi"))
    if old_csi and new_csi and "controllerExpandSecretRef" not in old_csi:
        # Setting the expansion secret later is allowed.
        new_src = {**new_src, "csi": {k: v for k, v in new_csi.items() if k != "controllerExpandSecretRef"}}
    if new_src != old_src:
        causes.append(
            forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after "
                "creation\n" + spec_diff(old_src, new_src, "core.PersistentVolumeSource"),
            )
        )
    causes += immutable("volumeMode", spec.get("volumeMode"), old_spec.get("volumeMode"))
    return causes


def validate_pvc_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    modes = as_list(spec.get("accessModes"))
    if not modes:
        causes.append(required(f"{path}.accessModes", "at least 1 access mode is required"))
    selector = spec.get("selector")
    if isinstance(selector, dict):
        causes += validate_label_selector(selector, f"{path}.selector")
    causes += _access_modes(modes, f"{path}.accessModes")
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    storage_path = key(f"{path}.resources", "storage")
    if "storage" not in requests:
        causes.append(required(storage_path))
    else:
        causes += positive_quantity(requests["storage"], storage_path)
    sc = spec.get("storageClassName")
    if isinstance(sc, str) and sc:
        causes += [invalid(f"{path}.storageClassName", sc, m) for m in name_is_dns_subdomain(sc, False)]
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    for fld in ("dataSource", "dataSourceRef"):
        ref = spec.get(fld)
        if isinstance(ref, dict):
            causes += _data_source(ref, f"{path}.{fld}", fld == "dataSourceRef")
    ds, dsr = spec.get("dataSource"), spec.get("dataSourceRef")
    if isinstance(dsr, dict) and as_str(dsr.get("namespace")):
        if ds is not None:
            causes.append(
                invalid(
                    path,
                    f"{path}.dataSource",
                    "may not be specified when dataSourceRef.namespace is specified",
                )
            )
    elif isinstance(ds, dict) and isinstance(dsr, dict):
        if (ds.get("apiGroup") or None, ds.get("kind"), ds.get("name")) != (
            dsr.get("apiGroup") or None,
            dsr.get("kind"),
            dsr.get("name"),
        ):
            causes.append(invalid(path, f"{path}.dataSource", "must match dataSourceRef"))
    vac = spec.get("volumeAttributesClassName")
    if isinstance(vac, str) and vac:
        causes += [
            invalid(f"{path}.volumeAttributesClassName", vac, m) for m in name_is_dns_subdomain(vac, False)
        ]
    return causes


def _data_source(ref: Obj, path: str, is_ref: bool) -> list[Cause]:
    causes: list[Cause] = []
    if not as_str(ref.get("name")):
        causes.append(required(f"{path}.name"))
    kind = as_str(ref.get("kind"))
    if not kind:
        causes.append(required(f"{path}.kind"))
    group = as_str(ref.get("apiGroup"))
    if not group and kind != "PersistentVolumeClaim":
        causes.append(
            invalid(path, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup")
        )
    if group:
        causes += [invalid(f"{path}.apiGroup", group, m) for m in is_dns1123_subdomain(group)]
    namespace = as_str(ref.get("namespace")) if is_ref else ""
    if namespace:
        causes += [invalid(f"{path}.namespace", namespace, m) for m in name_is_dns_label(namespace, False)]
    return causes


def validate_pvc(obj: Obj) -> list[Cause]:
    return validate_pvc_spec(as_dict(obj.get("spec")))


def validate_pvc_update(obj: Obj, old: Obj) -> list[Cause]:
    """Only a bound claim's storage request (growing) and volumeAttributesClassName may change."""
    causes: list[Cause] = []
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    new_clone, old_clone = copy.deepcopy(spec), copy.deepcopy(old_spec)
    if not as_str(old_spec.get("volumeName")):
        # The binder sets volumeName once.
        _set(old_clone, "volumeName", new_clone.get("volumeName"))
    old_ann = as_dict(as_dict(old.get("metadata")).get("annotations"))
    new_ann = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    old_sc, new_sc = old_spec.get("storageClassName"), spec.get("storageClassName")
    if (
        BETA_STORAGE_CLASS_ANNOTATION in old_ann
        and old_sc is None
        and new_sc is not None
        and new_sc == old_ann[BETA_STORAGE_CLASS_ANNOTATION]
        and new_ann.get(BETA_STORAGE_CLASS_ANNOTATION, new_sc) == new_sc
    ):
        new_clone.pop("storageClassName", None)
    else:
        new_value = as_str(new_ann.get(BETA_STORAGE_CLASS_ANNOTATION))
        if new_value != as_str(old_ann.get(BETA_STORAGE_CLASS_ANNOTATION)):
            causes.append(
                invalid(
                    f"metadata.annotations.{BETA_STORAGE_CLASS_ANNOTATION}", new_value, "field is immutable"
                )
            )
        if (
            new_sc is not None
            and old_sc is None
            and (
                BETA_STORAGE_CLASS_ANNOTATION not in old_ann
                or new_sc == old_ann[BETA_STORAGE_CLASS_ANNOTATION]
            )
        ):
            new_clone.pop("storageClassName", None)
    phase = as_dict(obj.get("status")).get("phase", as_dict(old.get("status")).get("phase"))
    if phase == "Bound":
        requests = as_dict(new_clone.get("resources")).get("requests")
        if isinstance(requests, dict):
            old_requests = as_dict(as_dict(old_spec.get("resources")).get("requests"))
            _set(requests, "storage", old_requests.get("storage"))
        if new_clone.get("volumeAttributesClassName") is not None:
            _set(new_clone, "volumeAttributesClassName", old_clone.get("volumeAttributesClassName"))
    if new_clone != old_clone:
        causes.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims\n"
                + spec_diff(old_clone, new_clone, "core.PersistentVolumeClaimSpec"),
            )
        )
    new_size = _storage(spec)
    old_size = _storage(old_spec)
    if new_size is not None and old_size is not None and new_size < old_size:
        # Recovery from failed expansion (on by default since 1.32): shrinking is allowed only while the
        # request stays above what the volume already has.
        capacity = as_dict(as_dict(old.get("status")).get("capacity")).get("storage", "0")
        status_size, _ = quantity(capacity, "status.capacity")
        if status_size is not None and new_size <= status_size:
            causes.append(
                forbidden("spec.resources.requests.storage", "field can not be less than status.capacity")
            )
    causes += immutable("volumeMode", spec.get("volumeMode"), old_spec.get("volumeMode"))
    old_vac, new_vac = old_spec.get("volumeAttributesClassName"), spec.get("volumeAttributesClassName")
    if old_vac is not None and old_vac != new_vac:
        if new_vac is None:
            causes.append(
                forbidden("spec.volumeAttributesClassName", "update from non-nil value to nil is forbidden")
            )
        elif new_vac == "":
            causes.append(
                forbidden(
                    "spec.volumeAttributesClassName",
                    "update from non-nil value to an empty string is forbidden",
                )
            )
    return causes


def _set(obj: Obj, name: str, value: Any) -> None:
    if value is None:
        obj.pop(name, None)
    else:
        obj[name] = value


def _storage(spec: Obj) -> Decimal | None:
    raw = as_dict(as_dict(spec.get("resources")).get("requests")).get("storage")
    if raw is None:
        return None
    return quantity(raw, "")[0]


__all__ = [
    "validate_pv",
    "validate_pv_update",
    "validate_pvc",
    "validate_pvc_update",
    "validate_pvc_spec",
    "is_dns1123_label",
]
