"""OpenAPI v3 documents (`/openapi/v3` index and one document per group/version), as kubectl reads them."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from pycdi.api.meta_schemas import object_meta
from pycdi.api.schema_dsl import described
from pycdi.cluster.apiserver.resources import ResourceInfo

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
PATCH = f"{META}.Patch"

# Groups kube-apiserver serves itself, and the package prefix kube names their schemas with.
_BUILTIN_PACKAGES = {
    "": "io.k8s.api.core",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}
_BUILTIN_GROUPS = {
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "storage.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "events.k8s.io",
    "authorization.k8s.io",
    "authentication.k8s.io",
    "networking.k8s.io",
    "discovery.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "admissionregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "storagemigration.k8s.io",
    "internal.apiserver.k8s.io",
}
_DESCRIPTIONS = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object.",
    "kind": "Kind is a string value representing the REST resource this object represents.",
    "metadata": "Standard object's metadata.",
}


def schema_name(info: ResourceInfo, kind: str | None = None) -> str:
    """kube's component name: `io.k8s.api.core.v1.ConfigMap`, `io.kubevirt.cdi.v1beta1.DataVolume`."""
    kind = kind or info.kind
    package = _BUILTIN_PACKAGES.get(info.group)
    if package is None and not info.custom and info.group in _BUILTIN_GROUPS:
        package = f"io.k8s.api.{info.group.split('.')[0]}"
    if package is None:
        package = ".".join(reversed(info.group.split(".")))
    return f"{package}.{info.version}.{kind}"


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _camel_gv(info: ResourceInfo) -> str:
    group = info.group.removesuffix(".k8s.io") if info.group else "core"
    words = re.split(r"[.\-]", group) + [info.version]
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str = "query", kind: str = "string", required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "schema": {"type": kind, "uniqueItems": True}}
    if required:
        param["required"] = True
    return param


_WRITE_PARAMS = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
_LIST_PARAMS = [
    _param("allowWatchBookmarks", kind="boolean"),
    _param("continue"),
    _param("fieldSelector"),
    _param("labelSelector"),
    _param("limit", kind="integer"),
    _param("resourceVersion"),
    _param("resourceVersionMatch"),
    _param("sendInitialEvents", kind="boolean"),
    _param("timeoutSeconds", kind="integer"),
    _param("watch", kind="boolean"),
]
_DELETE_PARAMS = [
    _param("dryRun"),
    _param("gracePeriodSeconds", kind="integer"),
    _param("orphanDependents", kind="boolean"),
    _param("propagationPolicy"),
]


def _responses(name: str, *codes: str) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(name)}, "application/yaml": {"schema": _ref(name)}}
    out: dict[str, Any] = {
        code: {"description": {"200": "OK", "201": "Created", "202": "Accepted"}[code], "content": content}
        for code in codes
    }
    out["401"] = {"description": "Unauthorized"}
    return out


def _operation(
    info: ResourceInfo,
    action: str,
    op_id: str,
    schema: str,
    params: list[dict[str, Any]],
    codes: tuple[str, ...],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [_camel_gv(info)[:1].lower() + _camel_gv(info)[1:]],
        "operationId": op_id,
        "parameters": copy.deepcopy(params),
        "responses": _responses(schema, *codes),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _json_body(schema: str) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": _ref(schema)}}, "required": True}


def _patch_body(info: ResourceInfo) -> dict[str, Any]:
    types = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
    if not info.custom:
        types.append("application/strategic-merge-patch+json")
    return {"content": {t: {"schema": _ref(PATCH)} for t in types}, "required": True}


def _paths(info: ResourceInfo) -> dict[str, Any]:
    verbs = set(info.verbs)
    scope = "Namespaced" if info.namespaced else ""
    suffix = f"{_camel_gv(info)}{scope}{info.kind}"
    prefix = f"/{_gv_key(info.group, info.version)}"
    ns = "/namespaces/{namespace}" if info.namespaced else ""
    collection, item = f"{prefix}{ns}/{info.plural}", f"{prefix}{ns}/{info.plural}/{{name}}"
    common = [_param("pretty")]
    if info.namespaced:
        common.insert(0, _param("namespace", "path", required=True))
    name = schema_name(info)
    list_name = schema_name(info, info.list_kind)
    paths: dict[str, Any] = {}

    col: dict[str, Any] = {}
    if "list" in verbs or "watch" in verbs:
        col["get"] = _operation(info, "list", f"list{suffix}", list_name, _LIST_PARAMS, ("200",))
    if "create" in verbs:
        col["post"] = _operation(
            info, "post", f"create{suffix}", name, _WRITE_PARAMS, ("200", "201", "202"), _json_body(name)
        )
    if "deletecollection" in verbs:
        col["delete"] = _operation(
            info,
            "deletecollection",
            f"deletecollection{suffix}",
            STATUS,
            _DELETE_PARAMS + _LIST_PARAMS[1:9],
            ("200",),
            _json_body(DELETE_OPTIONS),
        )
    if col:
        paths[collection] = {**col, "parameters": copy.deepcopy(common)}

    item_ops: dict[str, Any] = {}
    if "get" in verbs:
        item_ops["get"] = _operation(info, "get", f"read{suffix}", name, [], ("200",))
    if "update" in verbs:
        item_ops["put"] = _operation(
            info, "put", f"replace{suffix}", name, _WRITE_PARAMS, ("200", "201"), _json_body(name)
        )
    if "patch" in verbs:
        item_ops["patch"] = _operation(
            info,
            "patch",
            f"patch{suffix}",
            name,
            _WRITE_PARAMS + [_param("force", kind="boolean")],
            ("200", "201"),
            _patch_body(info),
        )
    if "delete" in verbs:
        item_ops["delete"] = _operation(
            info,
            "delete",
            f"delete{suffix}",
            STATUS,
            _DELETE_PARAMS,
            ("200", "202"),
            _json_body(DELETE_OPTIONS),
        )
    item_params = [_param("name", "path", required=True), *common]
    if item_ops:
        paths[item] = {**item_ops, "parameters": copy.deepcopy(item_params)}

    if "status" in info.subresources:
        status_ops = {
            "get": _operation(info, "get", f"read{suffix}Status", name, [], ("200",)),
            "put": _operation(
                info, "put", f"replace{suffix}Status", name, _WRITE_PARAMS, ("200", "201"), _json_body(name)
            ),
            "patch": _operation(
                info,
                "patch",
                f"patch{suffix}Status",
                name,
                _WRITE_PARAMS + [_param("force", kind="boolean")],
                ("200", "201"),
                _patch_body(info),
            ),
        }
        paths[f"{item}/status"] = {**status_ops, "parameters": copy.deepcopy(item_params)}
    if info.namespaced and ("list" in verbs or "watch" in verbs):
        paths[f"{prefix}/{info.plural}"] = {
            "get": _operation(
                info,
                "list",
                f"list{_camel_gv(info)}{info.kind}ForAllNamespaces",
                list_name,
                _LIST_PARAMS,
                ("200",),
            ),
            "parameters": [_param("pretty")],
        }
    return paths


def _type_meta_properties() -> dict[str, Any]:
    return {
        "apiVersion": {"type": "string", "description": _DESCRIPTIONS["apiVersion"]},
        "kind": {"type": "string", "description": _DESCRIPTIONS["kind"]},
        "metadata": {"allOf": [_ref(OBJECT_META)], "default": {}, "description": _DESCRIPTIONS["metadata"]},
    }


def _kind_schema(info: ResourceInfo) -> dict[str, Any]:
    gvk = [{"group": info.group, "version": info.version, "kind": info.kind}]
    if info.schema:
        # A CRD's schema, or a built-in's (pycdi.api.builtin_schemas, with its patch strategies: kubectl's
        # client-side apply builds its strategic merge patch from them).
        schema = copy.deepcopy(info.schema)
        props = schema.setdefault("properties", {})
        meta = _type_meta_properties()
        for key in ("apiVersion", "kind"):
            props.setdefault(key, meta[key])
        # Whatever the schema says about metadata (a CRD: at most name/generateName), clients see the
        # shared ObjectMeta component.
        props["metadata"] = meta["metadata"]
        schema.setdefault("type", "object")
    elif info.custom:
        schema = {
            "type": "object",
            "properties": _type_meta_properties(),
            "x-kubernetes-preserve-unknown-fields": True,
        }
    else:
        # Built-ins without a schema: no field list, so client tools invent no validation the server
        # does not do.
        schema = {
            "type": "object",
            "description": f"{info.kind} ({info.api_version}).",
            "properties": _type_meta_properties(),
            "x-kubernetes-preserve-unknown-fields": True,
        }
    schema["x-kubernetes-group-version-kind"] = gvk
    return schema


def _list_schema(info: ResourceInfo) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{info.list_kind} is a list of {info.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _DESCRIPTIONS["apiVersion"]},
            "items": {"type": "array", "items": {"allOf": [_ref(schema_name(info))], "default": {}}},
            "kind": {"type": "string", "description": _DESCRIPTIONS["kind"]},
            "metadata": {"allOf": [_ref(LIST_META)], "default": {}},
        },
        "x-kubernetes-group-version-kind": [
            {"group": info.group, "version": info.version, "kind": info.list_kind}
        ],
    }


def _meta_schemas() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        OBJECT_META: described(object_meta(), "ObjectMeta is metadata that all persisted resources must have."),
        LIST_META: {
            "type": "object",
            "properties": {
                "continue": string,
                "remainingItemCount": {"type": "integer", "format": "int64"},
                "resourceVersion": string,
                "selfLink": string,
            },
        },
        STATUS: {
            "type": "object",
            "description": "Status is a return value for calls that don't return other objects.",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
        },
        DELETE_OPTIONS: {
            "type": "object",
            "description": "DeleteOptions may be provided when deleting an API object.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        PATCH: {
            "type": "object",
            "description": "Patch is provided to give a concrete name and type to the "
            "Kubernetes PATCH request body.",
        },
    }


def openapi_v3_document(infos: Iterable[ResourceInfo], group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group/version, or None when nothing is served there."""
    selected = sorted((i for i in infos if i.group == group and i.version == version), key=lambda i: i.plural)
    if not selected:
        return None
    paths: dict[str, Any] = {}
    schemas = _meta_schemas()
    for info in selected:
        paths.update(_paths(info))
        schemas[schema_name(info)] = _kind_schema(info)
        if "list" in info.verbs:
            schemas[schema_name(info, info.list_kind)] = _list_schema(info)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def document_hash(document: dict[str, Any]) -> str:
    """A stable digest of a document (kube uses an uppercase hex SHA-512 too)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha512(canonical.encode()).hexdigest().upper()


def openapi_v3_index(infos: Iterable[ResourceInfo]) -> dict[str, Any]:
    """`GET /openapi/v3`: every group/version with the URL of its document, versioned by its hash."""
    all_infos = list(infos)
    gvs = sorted({(i.group, i.version) for i in all_infos})
    paths: dict[str, Any] = {}
    for group, version in gvs:
        document = openapi_v3_document(all_infos, group, version)
        assert document is not None
        key = _gv_key(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(document)}"}
    return {"paths": paths}
