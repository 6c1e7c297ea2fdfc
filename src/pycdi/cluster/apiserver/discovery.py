"""Discovery documents (legacy APIVersions/APIGroupList/APIResourceList and aggregated v2/v2beta1)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pycdi.cluster.apiserver.resources import ResourceInfo

from .mediatypes import media_ranges

AGGREGATED_VERSIONS = ("v2", "v2beta1")

#: Subresource -> (verbs, response (group, version, kind) or None for the parent's kind), as kube serves them.
SUBRESOURCES: dict[str, tuple[tuple[str, ...], tuple[str, str, str] | None]] = {
    "status": (("get", "patch", "update"), None),
    "scale": (("get", "patch", "update"), ("autoscaling", "v1", "Scale")),
    "log": (("get",), None),
    "token": (("create",), ("authentication.k8s.io", "v1", "TokenRequest")),
    "finalize": (("update",), None),
    "binding": (("create",), ("", "v1", "Binding")),
    "eviction": (("create",), ("policy", "v1", "Eviction")),
    "ephemeralcontainers": (("get", "patch", "update"), None),
    "resize": (("get", "patch", "update"), None),
    "approval": (("get", "patch", "update"), None),
    "exec": (("create", "get"), ("", "v1", "PodExecOptions")),
    "attach": (("create", "get"), ("", "v1", "PodAttachOptions")),
    "portforward": (("create", "get"), ("", "v1", "PodPortForwardOptions")),
    "proxy": (("create", "delete", "get", "patch", "update"), None),
}

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in kube's order: GA before beta before alpha, higher numbers first."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m[1])
    if m[2] is None:
        return (0, -major, 0, "")
    minor = int(m[3])
    return (1 if m[2] == "beta" else 2, -major, -minor, "")


def _subresource(sub: str) -> tuple[tuple[str, ...], tuple[str, str, str] | None]:
    return SUBRESOURCES.get(sub, (("get",), None))


def _groups(infos: Iterable[ResourceInfo]) -> dict[str, dict[str, list[ResourceInfo]]]:
    """group -> version (in kube's preference order) -> resources (sorted by plural)."""
    by_group: dict[str, dict[str, list[ResourceInfo]]] = {}
    for info in infos:
        by_group.setdefault(info.group, {}).setdefault(info.version, []).append(info)
    out: dict[str, dict[str, list[ResourceInfo]]] = {}
    for group, versions in by_group.items():
        ordered = sorted(versions, key=version_priority)
        out[group] = {v: sorted(versions[v], key=lambda i: i.plural) for v in ordered}
    return out


def _gv(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}" if group else version, "version": version}


def api_versions(server_address: str) -> dict[str, Any]:
    """`GET /api`: the legacy core versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: Iterable[str]) -> dict[str, Any]:
    listed = [_gv(group, v) for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(infos: Iterable[ResourceInfo]) -> dict[str, Any]:
    """`GET /apis`: every named group with its versions, the preferred (highest) first."""
    groups = [_group_doc(g, vs) for g, vs in _groups(infos).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(infos: Iterable[ResourceInfo], group: str) -> dict[str, Any] | None:
    """`GET /apis/<group>`, or None when no resource of that group is served."""
    versions = _groups(i for i in infos if i.group == group).get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _resource_entry(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular or info.kind.lower(),
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    return entry


def _subresource_entry(info: ResourceInfo, sub: str) -> dict[str, Any]:
    verbs, kind = _subresource(sub)
    entry: dict[str, Any] = {
        "name": f"{info.plural}/{sub}",
        "singularName": "",
        "namespaced": info.namespaced,
    }
    if kind is not None and (kind[0], kind[1]) != (info.group, info.version):
        entry["group"], entry["version"] = kind[0], kind[1]
    entry["kind"] = kind[2] if kind is not None else info.kind
    entry["verbs"] = list(verbs)
    return entry


def api_resource_list(infos: Iterable[ResourceInfo], group: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1` or `/apis/<g>/<v>`: resources and their subresources, or None for an unknown GV."""
    selected = sorted((i for i in infos if i.group == group and i.version == version), key=lambda i: i.plural)
    if not selected:
        return None
    resources: list[dict[str, Any]] = []
    for info in selected:
        resources.append(_resource_entry(info))
        resources.extend(_subresource_entry(info, sub) for sub in sorted(info.subresources))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular or info.kind.lower(),
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for sub in sorted(info.subresources):
        verbs, kind = _subresource(sub)
        g, v, k = kind if kind is not None else (info.group, info.version, info.kind)
        subs.append(
            {"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": list(verbs)}
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated_discovery(infos: Iterable[ResourceInfo], *, core: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for `/api` (core=True) or `/apis`, in `apidiscovery.k8s.io/<version>`.

    Answer it with `aggregated_content_type(version)` as the Content-Type.
    """
    items: list[dict[str, Any]] = []
    for group, versions in _groups(infos).items():
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None}
                if group
                else {"creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(i) for i in infos_of_v],
                        "freshness": "Current",
                    }
                    for v, infos_of_v in versions.items()
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def discovery_content_type(accept: str) -> str | None:
    """The aggregated discovery version ("v2"/"v2beta1") the Accept header prefers, else None (plain JSON).

    Media ranges are taken in order (q-values honoured); the first JSON one asking for an
    APIGroupDiscoveryList of a version we serve wins, and a plain `application/json` first means plain.
    """
    for r in media_ranges(accept):
        if not r.is_json:
            continue
        if r.params.get("as") == "APIGroupDiscoveryList" and r.params.get("g") == "apidiscovery.k8s.io":
            if r.params.get("v") in AGGREGATED_VERSIONS:
                return r.params["v"]
        elif "as" not in r.params and "g" not in r.params:
            return None
    return None
