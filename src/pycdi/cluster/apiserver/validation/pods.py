"""Pod validation (core/v1): the spec checks our workers need and kube's rules for pod updates."""

from __future__ import annotations

import copy
from typing import Any

from ..errors import Cause
from .metadata import as_dict, as_list, as_str
from .names import (
    duplicate,
    forbidden,
    go_value,
    idx,
    inclusive_range_error,
    invalid,
    is_dns1123_label,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    not_found,
    not_supported,
    required,
)
from .volumes import spec_diff

Obj = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_INT32 = 2**31 - 1
VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
UPDATABLE_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _label(value: str, path: str) -> list[Cause]:
    return [invalid(path, value, m) for m in is_dns1123_label(value)]


def _volumes(volumes: list[Any], path: str) -> tuple[set[str], list[Cause]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes):
        vol = as_dict(vol)
        vpath = idx(path, i)
        errs: list[Cause] = []
        count = 0
        for source in VOLUME_SOURCES:
            if vol.get(source) is None:
                continue
            if count > 0:
                errs.append(forbidden(f"{vpath}.{source}", "may not specify more than 1 volume type"))
                continue
            count += 1
            errs += _volume_source(source, as_dict(vol[source]), f"{vpath}.{source}")
        # No source at all is fine: v1 defaulting turns it into an emptyDir.
        name = as_str(vol.get("name"))
        if not name:
            errs.append(required(f"{vpath}.name"))
        else:
            errs += _label(name, f"{vpath}.name")
        if name in names:
            errs.append(duplicate(f"{vpath}.name", name))
        if errs:
            causes += errs
        else:
            names.add(name)
    return names, causes


def _volume_source(source: str, src: Obj, path: str) -> list[Cause]:
    if source == "hostPath" and not as_str(src.get("path")):
        return [required(f"{path}.path")]
    if source == "persistentVolumeClaim" and not as_str(src.get("claimName")):
        return [required(f"{path}.claimName")]
    if source == "secret" and not as_str(src.get("secretName")):
        return [required(f"{path}.secretName")]
    return []


def _container(ctr: Obj, path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    name = as_str(ctr.get("name"))
    if not name:
        causes.append(required(f"{path}.name"))
    else:
        causes += _label(name, f"{path}.name")
    if not as_str(ctr.get("image")):
        causes.append(required(f"{path}.image"))
    policy = ctr.get("imagePullPolicy")
    if policy not in (None, "") and policy not in PULL_POLICIES:
        causes.append(not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    port_names: set[str] = set()
    for i, port in enumerate(as_list(ctr.get("ports"))):
        port = as_dict(port)
        ppath = idx(f"{path}.ports", i)
        pname = as_str(port.get("name"))
        if pname:
            msgs = is_valid_port_name(pname)
            if msgs:
                causes += [invalid(f"{ppath}.name", pname, m) for m in msgs]
            elif pname in port_names:
                causes.append(duplicate(f"{ppath}.name", pname))
            port_names.add(pname)
        number = port.get("containerPort")
        if not number:
            causes.append(required(f"{ppath}.containerPort"))
        elif isinstance(number, int):
            causes += [invalid(f"{ppath}.containerPort", number, m) for m in is_valid_port_num(number)]
        protocol = port.get("protocol")
        if protocol not in (None, "") and protocol not in PROTOCOLS:
            causes.append(not_supported(f"{ppath}.protocol", protocol, PROTOCOLS))
    mount_points: set[str] = set()
    for i, mount in enumerate(as_list(ctr.get("volumeMounts"))):
        mount = as_dict(mount)
        mpath = idx(f"{path}.volumeMounts", i)
        mname = as_str(mount.get("name"))
        if not mname:
            causes.append(required(f"{mpath}.name"))
        if mname not in volumes:
            causes.append(not_found(f"{mpath}.name", mname))
        mount_path = as_str(mount.get("mountPath"))
        if not mount_path:
            causes.append(required(f"{mpath}.mountPath"))
        if mount_path in mount_points:
            causes.append(invalid(f"{mpath}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
    for i, device in enumerate(as_list(ctr.get("volumeDevices"))):
        device = as_dict(device)
        dname = as_str(device.get("name"))
        dpath = idx(f"{path}.volumeDevices", i)
        if not dname:
            causes.append(required(f"{dpath}.name"))
        elif dname not in volumes:
            causes.append(not_found(f"{dpath}.name", dname))
        if not as_str(device.get("devicePath")):
            causes.append(required(f"{dpath}.devicePath"))
    return causes


def validate_pod_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    volumes, causes = _volumes(as_list(spec.get("volumes")), f"{path}.volumes")
    containers = as_list(spec.get("containers"))
    if not containers:
        causes.append(required(f"{path}.containers"))
    names: set[str] = set()
    for i, ctr in enumerate(containers):
        ctr = as_dict(ctr)
        cpath = idx(f"{path}.containers", i)
        causes += _container(ctr, cpath, volumes)
        name = as_str(ctr.get("name"))
        if name in names:
            causes.append(duplicate(f"{cpath}.name", name))
        names.add(name)
    for i, ctr in enumerate(as_list(spec.get("initContainers"))):
        ctr = as_dict(ctr)
        cpath = idx(f"{path}.initContainers", i)
        causes += _container(ctr, cpath, volumes)
        name = as_str(ctr.get("name"))
        if name in names:
            causes.append(duplicate(f"{cpath}.name", name))
        names.add(name)
    policy = spec.get("restartPolicy")
    if policy == "":
        causes.append(required(f"{path}.restartPolicy"))
    elif policy is not None and policy not in RESTART_POLICIES:
        causes.append(not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if dns not in (None, "") and dns not in DNS_POLICIES:
        causes.append(not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    for fld in ("serviceAccountName", "nodeName"):
        value = as_str(spec.get(fld))
        if value:
            causes += [invalid(f"{path}.{fld}", value, m) for m in name_is_dns_subdomain(value, False)]
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        causes.append(invalid(f"{path}.activeDeadlineSeconds", deadline, inclusive_range_error(1, MAX_INT32)))
    return causes


def validate_pod(obj: Obj) -> list[Cause]:
    return validate_pod_spec(as_dict(obj.get("spec")))


def validate_pod_update(obj: Obj, old: Obj) -> list[Cause]:
    """Only images, activeDeadlineSeconds (shortened), new tolerations and a few more may change."""
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    causes: list[Cause] = []
    deadline, old_deadline = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int):
        if not 0 <= deadline <= MAX_INT32:
            return [invalid("spec.activeDeadlineSeconds", deadline, inclusive_range_error(0, MAX_INT32))]
        if isinstance(old_deadline, int) and old_deadline < deadline:
            return [
                invalid(
                    "spec.activeDeadlineSeconds", deadline, "must be less than or equal to previous value"
                )
            ]
    elif old_deadline is not None:
        causes.append(
            invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    for fld in ("containers", "initContainers"):
        if len(as_list(spec.get(fld))) != len(as_list(old_spec.get(fld))):
            what = "containers" if fld == "containers" else "init containers"
            causes.append(forbidden(f"spec.{fld}", f"pod updates may not add or remove {what}"))
            return causes
    mutated = copy.deepcopy(spec)
    for fld in ("containers", "initContainers"):
        for new_ctr, old_ctr in zip(as_list(mutated.get(fld)), as_list(old_spec.get(fld)), strict=False):
            if isinstance(new_ctr, dict):
                _copy_field(new_ctr, as_dict(old_ctr), "image")
    _copy_field(mutated, old_spec, "activeDeadlineSeconds")
    grace, old_grace = (
        spec.get("terminationGracePeriodSeconds"),
        old_spec.get("terminationGracePeriodSeconds"),
    )
    if isinstance(old_grace, int) and old_grace < 0 and grace == 1:
        _copy_field(mutated, old_spec, "terminationGracePeriodSeconds")
    old_tolerations = as_list(old_spec.get("tolerations"))
    new_tolerations = as_list(spec.get("tolerations"))
    if all(t in new_tolerations for t in old_tolerations):
        # Additions only: compare as if the new list were the old one.
        _copy_field(mutated, old_spec, "tolerations")
    gates = as_list(spec.get("schedulingGates"))
    if all(g in as_list(old_spec.get("schedulingGates")) for g in gates):
        _copy_field(mutated, old_spec, "schedulingGates")
    if mutated != old_spec:
        causes.append(
            forbidden(
                "spec",
                "pod updates may not change fields other than "
                + ",".join(UPDATABLE_FIELDS)
                + "\n"
                + spec_diff(old_spec, mutated, "core.PodSpec"),
            )
        )
    return causes


def _copy_field(target: Obj, source: Obj, name: str) -> None:
    if name in source:
        target[name] = copy.deepcopy(source[name])
    else:
        target.pop(name, None)


__all__ = ["go_value", "validate_pod", "validate_pod_spec", "validate_pod_update"]
