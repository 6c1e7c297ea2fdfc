"""The resource verbs: get, list, watch, create, update, patch, delete and deletecollection over HTTP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors
from ..listing import list_objects
from ..rbac import Attributes, UserInfo
from ..selectors import SelectorError, parse_field_selector, parse_label_selector, supported_fields
from ..service import APPLY_PATCH, WriteContext
from ..tables import parse_include_object, render_table, wants_table
from .bodies import decode_body, default_field_manager, media_type, write_context
from .paths import USER, Target, parse_target
from .watch import serve_watch

if TYPE_CHECKING:
    from .app import APIServer

Obj = dict[str, Any]


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        # warn-text is an RFC 7230 quoted-string: kube escapes '"' and '\\' so clients can parse it.
        headers["Warning"] = ", ".join(
            '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings[:20])
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers=headers)


def not_served() -> errors.APIError:
    return errors.APIError(404, "NotFound", "the server could not find the requested resource", {})


def verb_for(request: web.Request, target: Target) -> str:
    method = request.method
    if method == "GET":
        if target.is_collection:
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        return "get"
    # kube routes POST to collections (and subresources) and PUT/PATCH to objects only: others are 405.
    if method == "POST" and (target.is_collection or target.subresource):
        return "create"
    if method == "PUT" and not target.is_collection:
        return "update"
    if method == "PATCH" and not target.is_collection:
        return "patch"
    if method == "DELETE":
        return "deletecollection" if target.is_collection else "delete"
    raise errors.method_not_allowed()


def selectors(request: web.Request, target: Target) -> tuple[Any, Any]:
    q = request.query
    try:
        labels = parse_label_selector(q["labelSelector"]) if q.get("labelSelector") else None
        fields = (parse_field_selector(q["fieldSelector"], supported_fields(target.info.group, target.info.plural))
                  if q.get("fieldSelector") else None)
    except SelectorError as e:
        raise errors.bad_request(str(e)) from None
    return labels, fields


def check_list_resource_version(rv: str, match: str, continue_token: str) -> None:
    """kube-apiserver's ListOptions checks: a numeric resourceVersion, and resourceVersionMatch only with one."""
    if rv and not rv.isdigit():
        raise errors.bad_request(f'invalid resource version: invalid resource version "{rv}"')
    if not match:
        return
    causes: list[errors.Cause] = []
    if not rv:
        causes.append({"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                       "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"})
    if continue_token:
        causes.append({"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                       "message": "Forbidden: resourceVersionMatch is forbidden when continue is provided"})
    if match not in ("Exact", "NotOlderThan"):
        causes.append({"reason": "FieldValueNotSupported", "field": "resourceVersionMatch",
                       "message": f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""'})
    elif match == "Exact" and rv == "0":
        causes.append({"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                       "message": 'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'})
    if causes:
        raise errors.invalid("meta.k8s.io", "ListOptions", "", causes)


class ResourceHandler:
    """Routes `/api/v1/...` and `/apis/<g>/<v>/...` requests to the object service."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    async def handle(self, request: web.Request, group: str, version: str, rest: str) -> web.StreamResponse:
        target = parse_target(self.server.catalog, group, version, rest.split("/"))
        if target is None:
            raise not_served()
        verb = verb_for(request, target)
        user = request[USER]
        info = target.info
        if verb not in info.verbs and not target.subresource:
            raise errors.method_not_allowed()
        self.server.authorize(Attributes(
            user=user, verb=verb, namespace=target.namespace, api_group=info.group, resource=info.plural,
            subresource=target.subresource, name=target.name))
        if not info.stored:
            return await self.server.reviews.handle(request, target, user)
        if target.subresource and target.subresource != "status" and not (
                target.subresource == "finalize" and verb == "update"):
            return await self.server.subresources.handle(request, target, user, verb)
        method = getattr(self, f"_{verb}")
        result: web.StreamResponse = await method(request, target, user)
        return result

    # ---- reads -----------------------------------------------------------------------------------

    def _render(self, request: web.Request, target: Target, obj: Obj) -> web.Response:
        table = wants_table(request.headers.get("Accept", ""))
        if table:
            include = parse_include_object(request.query.get("includeObject"))
            meta = {"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")}
            return json_response(render_table(target.info, [obj], include_object=include, list_metadata=meta,
                                              table_version=table))
        return json_response(obj)

    async def _get(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        obj = self.server.service.get(target.info, target.namespace, target.name)
        return self._render(request, target, obj)

    async def _list(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        labels, fields = selectors(request, target)
        q = request.query
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            raise errors.bad_request(f'invalid limit "{q.get("limit")}"') from None
        check_list_resource_version(q.get("resourceVersion", ""), q.get("resourceVersionMatch", ""),
                                    q.get("continue", ""))
        table = wants_table(request.headers.get("Accept", ""))
        result = list_objects(self.server.store, target.info, target.namespace or None, labels=labels,
                              fields=fields, limit=max(limit, 0), continue_token=q.get("continue", ""),
                              raw=not table)
        if result.raw_items is not None:
            head = json.dumps({"kind": target.info.list_kind, "apiVersion": target.info.api_version,
                               "metadata": result.metadata()}, separators=(",", ":"))[:-1]
            body = head + ',"items":[' + ",".join(result.raw_items) + "]}"
            return web.Response(body=body.encode(), content_type="application/json")
        if table:
            include = parse_include_object(q.get("includeObject"))
            return json_response(render_table(target.info, result.items, include_object=include,
                                              list_metadata=result.metadata(), table_version=table))
        return json_response({"kind": target.info.list_kind, "apiVersion": target.info.api_version,
                              "metadata": result.metadata(), "items": result.items})

    async def _watch(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        labels, fields = selectors(request, target)
        return await serve_watch(self.server, request, target, labels, fields)

    # ---- writes ----------------------------------------------------------------------------------

    def _ctx(self, request: web.Request, user: UserInfo) -> WriteContext:
        ctx = write_context(request, user)
        if not ctx.field_manager and request.method != "PATCH":
            ctx.field_manager = default_field_manager(request)
        return ctx

    async def _create(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        if target.name:
            raise errors.method_not_allowed()
        ctx = self._ctx(request, user)
        body = await decode_body(request, ctx)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = await self.server.service.create(target.info, target.namespace, body, ctx)
        return json_response(obj, 201, ctx.warnings)

    async def _update(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        ctx = self._ctx(request, user)
        body = await decode_body(request, ctx)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = await self.server.service.update(target.info, target.namespace, target.name, body, ctx,
                                               target.subresource)
        return json_response(obj, 200, ctx.warnings)

    async def _patch(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        ctx = self._ctx(request, user)
        ctype = media_type(request)
        if ctype == APPLY_PATCH and not ctx.field_manager:
            raise errors.bad_request("PATCH requests with Content-Type application/apply-patch+yaml must have a "
                                     "fieldManager query parameter")
        if not ctx.field_manager:
            ctx.field_manager = default_field_manager(request)
        patch = await decode_body(request, ctx)
        force = request.query.get("force") in ("true", "1")
        obj, created = await self.server.service.patch(target.info, target.namespace, target.name, ctype, patch,
                                                       ctx, target.subresource, force)
        return json_response(obj, 201 if created else 200, ctx.warnings)

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            body = await decode_body(request)
            if body is not None and not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            options = body or {}
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        if "orphanDependents" in q:
            options["orphanDependents"] = q["orphanDependents"] == "true"
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid("meta.k8s.io", "DeleteOptions", "", [{
                "reason": "FieldValueNotSupported",
                "message": f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
                           f'"Orphan", "nil"', "field": "propagationPolicy"}])
        return options

    async def _delete(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        options = await self._delete_options(request)
        ctx = write_context(request, user)
        if "All" in (options.get("dryRun") or []):
            ctx.dry_run = True
        obj = await self.server.service.delete(target.info, target.namespace, target.name, options, ctx)
        return json_response(obj, 200)

    async def _deletecollection(self, request: web.Request, target: Target, user: UserInfo
                                ) -> web.StreamResponse:
        labels, fields = selectors(request, target)
        options = await self._delete_options(request)
        ctx = write_context(request, user)
        result = list_objects(self.server.store, target.info, target.namespace or None, labels=labels,
                              fields=fields)
        for obj in result.items:
            meta = obj["metadata"]
            try:
                await self.server.service.delete(target.info, meta.get("namespace", ""), meta["name"], options, ctx)
            except errors.APIError as e:
                if e.code != 404:
                    raise
        return json_response({"kind": target.info.list_kind, "apiVersion": target.info.api_version,
                              "metadata": {"resourceVersion": str(self.server.store.revision)},
                              "items": result.items})
