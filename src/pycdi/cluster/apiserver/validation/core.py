"""Validation of the smaller core/v1 types, Events (both groups) and Leases, with kube's messages."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import Cause
from .metadata import as_dict, as_list, as_str, validate_finalizers
from .names import (
    duplicate,
    forbidden,
    immutable,
    invalid,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_num,
    key,
    not_supported,
    required,
    too_long,
)

Obj = dict[str, Any]

MAX_SECRET_SIZE = 1024 * 1024
PROTOCOLS = ("SCTP", "TCP", "UDP")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"


# ---- namespaces -------------------------------------------------------------------------------------


def validate_namespace(obj: Obj) -> list[Cause]:
    finalizers = as_list(as_dict(obj.get("spec")).get("finalizers"))
    return validate_finalizers(finalizers, "spec.finalizers", kube_names=True)


# ---- configmaps and secrets -------------------------------------------------------------------------


def _key_causes(k: str, path: str) -> list[Cause]:
    return [invalid(key(path, k), k, m) for m in is_config_map_key(k)]


def validate_configmap(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    total = 0
    for k, v in data.items():
        causes += _key_causes(k, "data")
        if k in binary:
            causes.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(as_str(v).encode())
    for k, v in binary.items():
        causes += _key_causes(k, "binaryData")
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        # kube names the whole object with an empty path, which prints as "[]".
        causes.append(too_long("[]", MAX_SECRET_SIZE))
    return causes


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(as_str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(as_str(value))


def _immutable_data(obj: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if obj.get("immutable") is not True:
        causes.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
    for fld in fields:
        if (obj.get(fld) or {}) != (old.get(fld) or {}):
            causes.append(forbidden(fld, IMMUTABLE_WHEN_SET))
    return causes


def validate_configmap_update(obj: Obj, old: Obj) -> list[Cause]:
    return _immutable_data(obj, old, ("data", "binaryData"))


def _secret_data(obj: Obj) -> dict[str, bytes]:
    """data merged with stringData, as the v1 -> internal conversion does before validation."""
    merged: dict[str, bytes] = {}
    for k, v in as_dict(obj.get("data")).items():
        try:
            merged[k] = base64.b64decode(as_str(v), validate=True)
        except (binascii.Error, ValueError):
            merged[k] = as_str(v).encode()
    for k, v in as_dict(obj.get("stringData")).items():
        merged[k] = as_str(v).encode()
    return merged


def validate_secret(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    data = _secret_data(obj)
    for k in data:
        causes += _key_causes(k, "data")
    if sum(len(v) for v in data.values()) > MAX_SECRET_SIZE:
        causes.append(too_long("data", MAX_SECRET_SIZE))
    stype = as_str(obj.get("type"))
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    if stype == "kubernetes.io/service-account-token":
        if not as_str(annotations.get("kubernetes.io/service-account.name")):
            causes.append(required(key("metadata.annotations", "kubernetes.io/service-account.name")))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        data_key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if data_key not in data:
            causes.append(required(key("data", data_key)))
        else:
            try:
                parsed = json.loads(data[data_key])
                if not isinstance(parsed, dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as exc:
                causes.append(invalid(key("data", data_key), "<secret contents redacted>", str(exc)))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes += [required(key("data", "username")), required(key("data", "password"))]
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            causes.append(required(key("data", "ssh-privatekey")))
    elif stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                causes.append(required(key("data", k)))
    return causes


def validate_secret_update(obj: Obj, old: Obj) -> list[Cause]:
    causes = immutable("type", obj.get("type") or "Opaque", old.get("type") or "Opaque")
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
        if _secret_data(obj) != _secret_data(old):
            causes.append(forbidden("data", IMMUTABLE_WHEN_SET))
    return causes


# ---- services and endpoints -------------------------------------------------------------------------


def _port_name(name: str, path: str, required_name: bool, seen: set[str]) -> list[Cause]:
    if required_name and not name:
        return [required(path)]
    if not name:
        return []
    causes = [invalid(path, name, m) for m in is_dns1123_label(name)]
    if name in seen:
        causes.append(duplicate(path, name))
    seen.add(name)
    return causes


def _protocol(value: Any, path: str) -> list[Cause]:
    if value in (None, ""):
        return []  # defaulted to TCP
    return [] if value in PROTOCOLS else [not_supported(path, value, PROTOCOLS)]


def validate_service(obj: Obj) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes: list[Cause] = []
    stype = spec.get("type") or "ClusterIP"
    if stype not in SERVICE_TYPES:
        causes.append(not_supported("spec.type", stype, SERVICE_TYPES))
    ports = as_list(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and stype != "ExternalName":
        causes.append(required("spec.ports"))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        path = f"spec.ports[{i}]"
        causes += _port_name(as_str(port.get("name")), f"{path}.name", len(ports) > 1, seen)
        number = port.get("port")
        number = number if isinstance(number, int) else 0
        causes += [invalid(f"{path}.port", number, m) for m in is_valid_port_num(number)]
        causes += _protocol(port.get("protocol"), f"{path}.protocol")
        target = port.get("targetPort")
        if isinstance(target, int) and target != 0:
            causes += [invalid(f"{path}.targetPort", target, m) for m in is_valid_port_num(target)]
    if stype == "ExternalName":
        name = as_str(spec.get("externalName"))
        if not name:
            causes.append(required("spec.externalName"))
    return causes


def validate_service_update(obj: Obj, old: Obj) -> list[Cause]:
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    old_ip, new_ip = as_str(old_spec.get("clusterIP")), as_str(spec.get("clusterIP"))
    if old_ip and new_ip and old_ip != new_ip and (spec.get("type") or "ClusterIP") != "ExternalName":
        ips = [as_str(i) for i in as_list(spec.get("clusterIPs"))] or [new_ip]
        return [invalid("spec.clusterIPs[0]", ips, "may not change once set")]
    return []


def validate_endpoints(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        subset = as_dict(subset)
        path = f"subsets[{i}]"
        addresses, not_ready = as_list(subset.get("addresses")), as_list(subset.get("notReadyAddresses"))
        if not addresses and not not_ready:
            causes.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for fld, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for j, addr in enumerate(items):
                ip = as_str(as_dict(addr).get("ip"))
                if not _is_ip(ip):
                    causes.append(
                        invalid(
                            f"{path}.{fld}[{j}].ip",
                            ip,
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                        )
                    )
        ports = as_list(subset.get("ports"))
        seen: set[str] = set()
        for j, port in enumerate(ports):
            port = as_dict(port)
            ppath = f"{path}.ports[{j}]"
            causes += _port_name(as_str(port.get("name")), f"{ppath}.name", len(ports) > 1, seen)
            number = port.get("port")
            number = number if isinstance(number, int) else 0
            causes += [invalid(f"{ppath}.port", number, m) for m in is_valid_port_num(number)]
            causes += _protocol(port.get("protocol"), f"{ppath}.protocol")
    return causes


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# ---- nodes ------------------------------------------------------------------------------------------


def validate_node(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    effects = ("NoExecute", "NoSchedule", "PreferNoSchedule")
    for i, taint in enumerate(as_list(as_dict(obj.get("spec")).get("taints"))):
        taint = as_dict(taint)
        path = f"spec.taints[{i}]"
        k = as_str(taint.get("key"))
        causes += [invalid(f"{path}.key", k, m) for m in is_qualified_name(k)]
        effect = as_str(taint.get("effect"))
        if not effect:
            causes.append(required(f"{path}.effect"))
        elif effect not in effects:
            causes.append(not_supported(f"{path}.effect", effect, effects))
    return causes


# ---- events -----------------------------------------------------------------------------------------


def _legacy_event(event: Obj, namespace: str) -> list[Cause]:
    """legacyValidateEvent: namespaces agree; events with eventTime also carry their reporter."""
    causes: list[Cause] = []
    involved_ns = as_str(as_dict(event.get("involvedObject")).get("namespace"))
    mismatch = invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not event.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                causes.append(mismatch)
        elif namespace != involved_ns:
            causes.append(mismatch)
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            causes.append(mismatch)
        controller = as_str(event.get("reportingComponent"))
        if not controller:
            causes.append(required("reportingController"))
        causes += [invalid("reportingController", controller, m) for m in is_qualified_name(controller)]
        for fld, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = as_str(event.get(fld))
            if not value:
                causes.append(required(fld))
            if len(value) > limit:
                causes.append(invalid(fld, "", f"can have at most {limit} characters"))
        if len(as_str(event.get("message"))) > 1024:
            causes.append(invalid("message", "", "can have at most 1024 characters"))
    causes += [invalid("namespace", namespace, m) for m in is_dns1123_subdomain(namespace)]
    return causes


def validate_event(obj: Obj) -> list[Cause]:
    namespace = as_str(as_dict(obj.get("metadata")).get("namespace"))
    return _legacy_event(obj, namespace)


def event_v1_as_core(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event in core field names, which kube's messages use."""
    source = as_dict(obj.get("deprecatedSource"))
    return {
        "metadata": obj.get("metadata"),
        "involvedObject": obj.get("regarding"),
        "reason": obj.get("reason"),
        "message": obj.get("note"),
        "eventTime": obj.get("eventTime"),
        "type": obj.get("type"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
        "action": obj.get("action"),
        "source": source,
        "count": obj.get("deprecatedCount"),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "series": obj.get("series"),
    }


def validate_event_v1(obj: Obj) -> list[Cause]:
    """Strict validation of events.k8s.io/v1 creations (kube's ValidateEventCreate)."""
    event = event_v1_as_core(obj)
    causes = validate_event(event)
    if not event.get("eventTime"):
        causes.append(required("eventTime"))
    etype = event.get("type")
    if etype not in ("Normal", "Warning"):
        causes.append(invalid("type", "", f"has invalid value: {as_str(etype)}"))
    for fld in ("firstTimestamp", "lastTimestamp", "count"):
        if event.get(fld):
            causes.append(invalid(fld, "", "needs to be unset"))
    if as_str(as_dict(event.get("source")).get("component")) or as_str(
        as_dict(event.get("source")).get("host")
    ):
        causes.append(invalid("source", "", "needs to be unset"))
    series = event.get("series")
    if isinstance(series, dict):
        if not isinstance(series.get("count"), int) or series["count"] < 2:
            causes.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            causes.append(required("series.lastObservedTime"))
    return causes


def validate_event_v1_update(obj: Obj, old: Obj) -> list[Cause]:
    """Only series, and the deprecated counters, may change on an events.k8s.io Event."""
    causes: list[Cause] = []
    for fld in (
        "regarding",
        "related",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "note",
        "type",
        "eventTime",
    ):
        path = {
            "regarding": "involvedObject",
            "related": "related",
            "reportingController": "reportingController",
            "note": "message",
        }.get(fld, fld)
        causes += immutable(path, obj.get(fld), old.get(fld))
    return causes


# ---- leases -----------------------------------------------------------------------------------------


def validate_lease(obj: Obj) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy not in (None, "") and strategy != "OldestEmulationVersion":
        causes.append(not_supported("spec.strategy", strategy, ("OldestEmulationVersion",)))
    if spec.get("preferredHolder") and not strategy:
        causes.append(forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return causes
