"""Object semantics between the REST handlers (and in-process controllers) and the store.

Every write goes through here: names and generated names, uid and timestamps, generation, the status
subresource split, CRD schema pruning/defaulting/validation, built-in validation, admission, finalizers and
deletion propagation, managed fields, optimistic concurrency and dry runs.
"""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import deletion, errors, strategies
from .admission import CREATE, DELETE, UPDATE, AdmissionChain, AdmissionRequest
from .catalog import Catalog
from .checks import schema_checks, validate_object
from .conversion import to_served, to_stored
from .patching import (
    ApplyConflict,
    PatchError,
    builtin_list_map_keys,
    json_patch,
    merge_patch,
    server_side_apply,
    strategic_merge_patch,
    update_managed_fields,
)
from .rbac import UserInfo
from .resources import ResourceInfo
from .schema import (
    list_map_keys,
)
from .store import KeyExists, KeyMissing, RevisionMismatch, Store
from .validation.names import go_value

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CR_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
ALL_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]

SYSTEM = UserInfo(name="system:apiserver", groups=("system:masters",))

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # kube's generateName alphabet: no vowels, no look-alikes


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteContext:
    """Who writes and how: the request's user and its query options."""

    user: UserInfo = SYSTEM
    dry_run: bool = False
    field_manager: str = ""
    #: Strict | Warn | Ignore; kube-apiserver's default is Warn.
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    #: Duplicate JSON fields seen while decoding the body (reported per field_validation).
    duplicate_fields: list[str] = field(default_factory=list)


class ObjectService:
    """Create, read, update, patch and delete objects with Kubernetes API semantics."""

    def __init__(self, store: Store, catalog: Catalog, admission: AdmissionChain | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.admission = admission or AdmissionChain()
        #: id(schema) -> (schema, {path: list keys}); the schema is kept so its id cannot be reused.
        self._list_key_memo: dict[int, tuple[dict[str, Any], dict[tuple[str, ...], list[str] | None]]] = {}

    # ---- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def key(info: ResourceInfo) -> str:
        return info.storage_key

    @staticmethod
    def _ns(info: ResourceInfo, namespace: str) -> str:
        return namespace if info.namespaced else ""

    @staticmethod
    def present(info: ResourceInfo, obj: Obj) -> Obj:
        """The object as served at `info`'s version."""
        return to_served(info, obj)

    def _load(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        """The stored object in the form `info` serves (only resources stored under another group differ)."""
        obj = self.store.get(self.key(info), namespace, name)
        return to_served(info, obj) if obj is not None and info.shares_storage_with else obj

    def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        obj = self.store.get(self.key(info), self._ns(info, namespace), name)
        if obj is None:
            raise errors.not_found(info.group, info.plural, name)
        return self.present(info, obj)

    def find(self, info: ResourceInfo, namespace: str, name: str) -> Obj | None:
        obj = self.store.get(self.key(info), self._ns(info, namespace), name)
        return self.present(info, obj) if obj is not None else None

    def _check_namespace(self, info: ResourceInfo, namespace: str, operation: str, name: str = "") -> None:
        if not info.namespaced:
            return
        if not namespace:
            raise errors.bad_request("the server could not find the requested resource: a namespace is required")
        ns = self.store.get("core/namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if operation == CREATE and ns.get("metadata", {}).get("deletionTimestamp"):
            # kube's NamespaceLifecycle admission names the object, as apierrors.NewForbidden does
            what = f'{info.group_resource} "{name}"' if name else info.group_resource
            raise errors.APIError(
                403, "Forbidden",
                f"{what} is forbidden: unable to create new content in namespace {namespace} "
                f"because it is being terminated",
                {**({"name": name} if name else {}), "kind": info.plural, "group": info.group, "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace"}]})

    def _check_identity(self, info: ResourceInfo, namespace: str, obj: Obj, name: str | None) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({info.api_version})")
        if kind and kind != info.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        body_ns = meta.get("namespace")
        if info.namespaced:
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if name is not None:
            meta["name"] = name

    # ---- create ----------------------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str, body: Obj, ctx: WriteContext) -> Obj:
        obj = copy.deepcopy(body)
        self._check_identity(info, namespace, obj, None)
        meta = obj["metadata"]
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(info.group, info.kind, "", [{
                    "reason": "FieldValueRequired", "message": "name or generateName is required",
                    "field": "metadata.name"}])
            meta["name"] = prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        namespace = meta.get("namespace", "") if info.namespaced else ""
        self._check_namespace(info, namespace, CREATE, meta["name"])
        schema_checks(info, obj, ctx)
        for k in ("resourceVersion", "uid", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
                  "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if tracks_generation(info):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        strategies.prepare_for_create(info, obj)
        request = AdmissionRequest(CREATE, info, namespace, meta["name"], ctx.user, obj, dry_run=ctx.dry_run,
                                   warnings=ctx.warnings)
        await self.admission.mutate(request)
        validate_object(info, obj, None)
        await self.admission.validate(request)
        if ctx.field_manager:
            update_managed_fields(None, obj, ctx.field_manager, info.api_version, now_rfc3339(),
                                  list_map_keys=self._list_keys(info))
        key = self.key(info)
        if ctx.dry_run:
            if self.store.get(key, namespace, meta["name"]) is not None:
                raise errors.already_exists(info.group, info.plural, meta["name"])
            return self.present(info, obj)
        try:
            return self.present(info, self.store.create(key, namespace, meta["name"], to_stored(info, obj)))
        except KeyExists:
            raise errors.already_exists(info.group, info.plural, meta["name"]) from None

    # ---- update ----------------------------------------------------------------------------------

    async def update(self, info: ResourceInfo, namespace: str, name: str, body: Obj, ctx: WriteContext,
                     subresource: str = "", *, require_rv: bool | None = None) -> Obj:
        """PUT: replace the object (or its status) as a whole; a stale resourceVersion is a 409."""
        obj = copy.deepcopy(body)
        self._check_identity(info, namespace, obj, name)
        namespace = self._ns(info, namespace)
        old = self._load(info, namespace, name)
        if old is None:
            raise errors.not_found(info.group, info.plural, name)
        rv = obj["metadata"].get("resourceVersion")
        if not rv and (require_rv if require_rv is not None else info.custom):
            raise errors.invalid(info.group, info.kind, name, [{
                "reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update",
                "field": "metadata.resourceVersion"}])
        if rv and rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(info.group, info.plural, name)
        return await self._write_update(info, namespace, name, obj, old, ctx, subresource)

    async def _write_update(self, info: ResourceInfo, namespace: str, name: str, obj: Obj, old: Obj,
                            ctx: WriteContext, subresource: str, managed_operation: str = "Update",
                            managed_done: bool = False) -> Obj:
        if subresource == "status":
            obj = strategies.prepare_for_status_update(info, obj, old)
            schema_checks(info, obj, ctx)  # kube prunes, defaults and validates CR status writes too
        elif subresource == "finalize" and (info.group, info.plural) == ("", "namespaces"):
            finalizers = (obj.get("spec") or {}).get("finalizers") or []
            obj = copy.deepcopy(old)
            obj.setdefault("spec", {})["finalizers"] = finalizers
        elif subresource:
            raise errors.method_not_allowed()
        else:
            strategies.prepare_for_update(info, obj, old)
            schema_checks(info, obj, ctx)
        meta = obj.setdefault("metadata", {})
        old_meta = old.get("metadata", {})
        new_uid = meta.get("uid")
        if new_uid and new_uid != old_meta.get("uid"):
            # kube fills an omitted uid from the stored object but refuses a different one
            raise errors.invalid(info.group, info.kind, name, [{
                "reason": "FieldValueInvalid", "message": f"Invalid value: {json.dumps(new_uid)}: field is immutable",
                "field": "metadata.uid"}])
        # Server-owned metadata cannot be changed by clients.
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace",
                  "name"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if tracks_generation(info):
            meta["generation"] = old_meta.get("generation", 1)
            if self._spec_changed(info, obj, old):
                meta["generation"] += 1
        else:
            meta.pop("generation", None)
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(info.group, info.kind, name, [{
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
                               f"found new finalizers {go_value(sorted(added))}",  # Go %#v, as kube prints it
                    "field": "metadata.finalizers"}])
        request = AdmissionRequest(UPDATE, info, namespace, name, ctx.user, obj, old_object=old,
                                   subresource=subresource, dry_run=ctx.dry_run, warnings=ctx.warnings)
        await self.admission.mutate(request)
        if not subresource:
            validate_object(info, obj, old)
        await self.admission.validate(request)
        if ctx.field_manager and not managed_done:
            update_managed_fields(old, obj, ctx.field_manager, info.api_version, now_rfc3339(),
                                  operation=managed_operation, subresource=subresource,
                                  list_map_keys=self._list_keys(info))
        elif not ctx.field_manager and "managedFields" in old_meta and "managedFields" not in meta:
            meta["managedFields"] = old_meta["managedFields"]
        if self._unchanged(obj, old):
            # kube-apiserver does not write (nor bump resourceVersion) for a no-op update.
            return self.present(info, old)
        if ctx.dry_run:
            return self.present(info, obj)
        key = self.key(info)
        expected = int(old_meta.get("resourceVersion", "0") or 0)
        spec_finalizers = (obj.get("spec") or {}).get("finalizers") if info.plural == "namespaces" else None
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers") and not spec_finalizers:
            # The last finalizer is gone: the deletion the client asked for earlier completes now.
            try:
                deleted = self.store.delete(key, namespace, name, expected_rev=expected,
                                            final=to_stored(info, obj))
            except RevisionMismatch:
                raise errors.conflict(info.group, info.plural, name) from None
            return self.present(info, deleted)
        try:
            return self.present(info, self.store.update(key, namespace, name, to_stored(info, obj),
                                                        expected_rev=expected))
        except RevisionMismatch:
            raise errors.conflict(info.group, info.plural, name) from None
        except KeyMissing:
            raise errors.not_found(info.group, info.plural, name) from None

    @staticmethod
    def _spec_changed(info: ResourceInfo, new: Obj, old: Obj) -> bool:
        ignored = {"metadata", "status", "apiVersion", "kind"}
        if "status" not in info.subresources and info.custom:
            ignored = {"metadata", "apiVersion", "kind"}
        keys = (set(new) | set(old)) - ignored
        return any(new.get(k) != old.get(k) for k in keys)

    @staticmethod
    def _unchanged(new: Obj, old: Obj) -> bool:
        # Like kube's IgnoreManagedFieldsTimestampsTransformer: only the managedFields timestamps are
        # ignored, so an apply that changes nothing but ownership (co-owning a field) is still written.
        def view(obj: Obj) -> Obj:
            meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
            meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                                     for e in meta.get("managedFields") or [] if isinstance(e, dict)]
            return {**{k: v for k, v in obj.items() if k != "apiVersion"}, "metadata": meta}

        return view(new) == view(old)

    # ---- patch -----------------------------------------------------------------------------------

    async def patch(self, info: ResourceInfo, namespace: str, name: str, content_type: str, patch: Any,
                    ctx: WriteContext, subresource: str = "", force: bool = False) -> tuple[Obj, bool]:
        """PATCH with any of the four patch types; returns (object, created) (apply may create)."""
        allowed = CR_PATCH_TYPES if info.custom else ALL_PATCH_TYPES
        if content_type not in allowed:
            raise errors.unsupported_media_type(content_type, allowed)
        namespace = self._ns(info, namespace)
        for _attempt in range(5):
            old = self._load(info, namespace, name)
            if content_type == APPLY_PATCH:
                if not ctx.field_manager:
                    raise errors.bad_request("PATCH requests with Content-Type application/apply-patch+yaml must "
                                             "have a fieldManager query parameter")
                if not isinstance(patch, dict):
                    raise errors.bad_request("the body of an apply patch must be an object")
                self._check_identity(info, namespace, patch, name)
                if old is None:
                    return await self._apply_create(info, namespace, name, patch, ctx, force), True
            if old is None:
                raise errors.not_found(info.group, info.plural, name)
            old_view = self.present(info, copy.deepcopy(old))
            try:
                new = self._apply_patch(info, old_view, content_type, patch, ctx, force, subresource)
            except PatchError as e:
                raise e.api_error() from None
            except ApplyConflict as e:
                raise e.api_error() from None
            if not isinstance(new, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if rv and rv != old["metadata"].get("resourceVersion"):
                raise errors.conflict(info.group, info.plural, name)
            self._check_identity(info, namespace, new, name)
            try:
                result = await self._write_update(info, namespace, name, new, old, ctx, subresource,
                                                  managed_done=content_type == APPLY_PATCH)
            except errors.APIError as e:
                if e.code == 409 and e.reason == "Conflict" and not rv:
                    continue  # someone wrote in between: re-apply the patch to the fresh object
                raise
            return result, False
        raise errors.conflict(info.group, info.plural, name)

    def _apply_patch(self, info: ResourceInfo, old: Obj, content_type: str, patch: Any, ctx: WriteContext,
                     force: bool, subresource: str) -> Obj:
        if content_type == MERGE_PATCH:
            return merge_patch(old, patch)
        if content_type == JSON_PATCH:
            return json_patch(old, patch)
        if content_type == STRATEGIC_PATCH:
            if not isinstance(patch, dict):
                raise PatchError(400, "the body of a strategic merge patch must be an object")
            return strategic_merge_patch(old, patch, info.api_version, info.kind)
        return server_side_apply(old, patch, ctx.field_manager, force, info.api_version,
                                 list_map_keys=self._list_keys(info), now=now_rfc3339())

    def _list_keys(self, info: ResourceInfo) -> Any:
        """How lists are keyed for managed fields: the CRD schema's list types, or the built-in merge keys."""
        if info.custom:
            schema = info.schema
            if not schema:
                return None
            # Walking the schema per path is costly on every write: memoise per schema and path.
            memo = self._list_key_memo.setdefault(id(schema), (schema, {}))[1]

            def keys(path: tuple[str, ...]) -> list[str] | None:
                if path not in memo:
                    memo[path] = list_map_keys(schema, path)
                return memo[path]
            return keys
        return builtin_list_map_keys(info.kind)

    async def _apply_create(self, info: ResourceInfo, namespace: str, name: str, applied: Obj,
                            ctx: WriteContext, force: bool) -> Obj:
        obj = server_side_apply(None, copy.deepcopy(applied), ctx.field_manager, force, info.api_version,
                                list_map_keys=self._list_keys(info), now=now_rfc3339())
        obj.setdefault("metadata", {})["name"] = name
        managed = obj["metadata"].get("managedFields")
        created = await self.create(info, namespace, obj, WriteContext(
            user=ctx.user, dry_run=ctx.dry_run, field_validation=ctx.field_validation, warnings=ctx.warnings))
        if managed and not ctx.dry_run:
            created["metadata"]["managedFields"] = managed
            created = self.present(info, self.store.update(self.key(info), namespace if info.namespaced else "",
                                                           name, to_stored(info, created)))
        return created

    # ---- delete ----------------------------------------------------------------------------------

    async def delete(self, info: ResourceInfo, namespace: str, name: str, options: Obj | None,
                     ctx: WriteContext) -> Obj:
        """DELETE: immediate, or deferred behind finalizers, grace periods and namespace emptying."""
        options = options or {}
        namespace = self._ns(info, namespace)
        old = self._load(info, namespace, name)
        if old is None:
            raise errors.not_found(info.group, info.plural, name)
        deletion.check_preconditions(info, name, old["metadata"], options)
        request = AdmissionRequest(DELETE, info, namespace, name, ctx.user, None, old_object=old,
                                   dry_run=ctx.dry_run, options=options)
        await self.admission.mutate(request)
        await self.admission.validate(request)
        action, new = deletion.plan(info, old, options)
        if action == "unchanged" or (action == "now" and ctx.dry_run):
            return self.present(info, old)
        if action == "defer":
            return self._store_update(info, namespace, name, new, ctx)
        try:
            return self.present(info, self.store.delete(self.key(info), namespace, name))
        except KeyMissing:
            raise errors.not_found(info.group, info.plural, name) from None

    def _store_update(self, info: ResourceInfo, namespace: str, name: str, new: Obj, ctx: WriteContext) -> Obj:
        if ctx.dry_run:
            return self.present(info, new)
        return self.present(info, self.store.update(self.key(info), namespace, name, to_stored(info, new)))

    # ---- in-process conveniences for control loops -----------------------------------------------

    def info_for(self, api_version: str, kind: str) -> ResourceInfo | None:
        return self.catalog.by_kind(api_version, kind)

    async def remove_finalizer(self, info: ResourceInfo, namespace: str, name: str, finalizer: str) -> None:
        for _ in range(5):
            obj = self.find(info, namespace, name)
            if obj is None or finalizer not in (obj["metadata"].get("finalizers") or []):
                return
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
            try:
                await self.update(info, namespace, name, obj, WriteContext(), require_rv=True)
                return
            except errors.APIError as e:
                if e.code != 409:
                    raise


#: Built-in kinds whose registry strategy keeps metadata.generation (most built-ins we serve do not).
_GENERATION_BUILTINS = {("apiextensions.k8s.io", "customresourcedefinitions")}


def tracks_generation(info: ResourceInfo) -> bool:
    return info.custom or (info.group, info.plural) in _GENERATION_BUILTINS
