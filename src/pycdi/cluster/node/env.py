"""A container's environment as the kubelet builds it: envFrom, env with valueFrom, and `$(VAR)` expansion."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ...api.quantity import QuantityError, parse

Obj = dict[str, Any]
#: (kind "ConfigMap"|"Secret", name) -> the object, or None when it does not exist.
Lookup = Callable[[str, str], Obj | None]

_C_IDENTIFIER = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """The container cannot be configured (kubelet's CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubelet's `$(VAR)` expansion: known names replaced, `$$` escapes `$`, anything else left as written."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append(text[i:])  # unterminated reference: kept literally
                break
            name = text[i + 2:close]
            out.append(env[name] if name in env else text[i:close + 1])
            i = close + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def field_value(pod: Obj, path: str) -> str:
    """A downward API `fieldRef.fieldPath` value from the pod (the subset the kubelet supports)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path not in simple:
        raise ConfigError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


def resource_value(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """`resourceFieldRef`: a limit or request in units of the divisor; limits default to the node's."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        raw = allocatable.get(name, "0") if kind == "limits" else "0"
    try:
        value = parse(raw).value
        divisor = parse(ref.get("divisor") or "1").value
    except QuantityError as e:
        raise ConfigError(str(e)) from None
    return str(math.ceil(value / divisor)) if divisor else "0"


def _decoded(kind: str, obj: Obj, key: str) -> str | None:
    if kind == "Secret":
        value = (obj.get("data") or {}).get(key)
        return base64.b64decode(value).decode(errors="replace") if isinstance(value, str) else None
    value = (obj.get("data") or {}).get(key)
    if value is None and key in (obj.get("binaryData") or {}):
        return base64.b64decode(obj["binaryData"][key]).decode(errors="replace")
    return value if isinstance(value, str) else None


def _key_ref(kind: str, ref: Obj, namespace: str, lookup: Lookup) -> str | None:
    name = str(ref.get("name") or "")
    key = str(ref.get("key") or "")
    optional = bool(ref.get("optional"))
    obj = lookup(kind, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    value = _decoded(kind, obj, key)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return value


def container_env(pod: Obj, container: Obj, lookup: Lookup, allocatable: Mapping[str, str]) -> dict[str, str]:
    """The container's variables in kubelet order: envFrom sources, then env entries (later ones win)."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(field)
            if not isinstance(ref, dict):
                continue
            obj = lookup(kind, str(ref.get("name") or ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
            keys = list((obj.get("data") or {}).keys())
            if kind == "ConfigMap":
                keys += list((obj.get("binaryData") or {}).keys())
            for key in keys:
                name = prefix + key
                if not _C_IDENTIFIER.match(name):
                    continue  # the kubelet skips keys that are not valid variable names (with an event)
                value = _decoded(kind, obj, key)
                if value is not None:
                    env[name] = value
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        source = var.get("valueFrom")
        if not isinstance(source, dict):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        if isinstance(source.get("fieldRef"), dict):
            env[name] = field_value(pod, str(source["fieldRef"].get("fieldPath") or ""))
        elif isinstance(source.get("resourceFieldRef"), dict):
            env[name] = resource_value(container, source["resourceFieldRef"], allocatable)
        elif isinstance(source.get("configMapKeyRef"), dict):
            value = _key_ref("ConfigMap", source["configMapKeyRef"], namespace, lookup)
            if value is not None:
                env[name] = value
        elif isinstance(source.get("secretKeyRef"), dict):
            value = _key_ref("Secret", source["secretKeyRef"], namespace, lookup)
            if value is not None:
                env[name] = value
    return env


def command_line(container: Obj, env: Mapping[str, str], entrypoint: list[str]) -> list[str]:
    """command + args with `$(VAR)` expanded; the image's entrypoint stands in when command is empty."""
    command = [str(c) for c in container.get("command") or []] or list(entrypoint)
    args = [str(a) for a in container.get("args") or []]
    return [expand(part, env) for part in command + args]
