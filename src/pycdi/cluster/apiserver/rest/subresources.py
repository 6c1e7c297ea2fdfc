"""Subresources with their own verbs: serviceaccounts/token, pods/binding and pods/log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors
from ..rbac import UserInfo
from ..service import WriteContext
from ..tokens import issue_service_account_token
from .bodies import decode_body
from .handlers import json_response
from .paths import Target

if TYPE_CHECKING:
    from .app import APIServer

Obj = dict[str, Any]
#: (namespace, pod, container, query) -> log text, or a byte stream (follow=true); the node agent installs one.
LogReader = Callable[[str, str, str, dict[str, str]], Awaitable[str | AsyncIterator[bytes]]]

MAX_TOKEN_SECONDS = 48 * 3600
DEFAULT_TOKEN_SECONDS = 3600


class Subresources:
    def __init__(self, server: APIServer) -> None:
        self.server = server
        self.log_reader: LogReader | None = None

    async def handle(self, request: web.Request, target: Target, user: UserInfo, verb: str
                     ) -> web.StreamResponse:
        key = (target.info.plural, target.subresource, request.method)
        if key == ("serviceaccounts", "token", "POST"):
            return await self._token(request, target, user)
        if key == ("pods", "binding", "POST"):
            return await self._binding(request, target, user)
        if key == ("pods", "log", "GET"):
            return await self._log(request, target)
        raise errors.method_not_allowed()

    async def _token(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        sa = self.server.service.get(target.info, target.namespace, target.name)
        body = await decode_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a TokenRequest")
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
        if seconds < 600:
            raise errors.invalid("authentication.k8s.io", "TokenRequest", target.name, [{
                "reason": "FieldValueInvalid", "message": "may not specify a duration less than 10 minutes",
                "field": "spec.expirationSeconds"}])
        seconds = min(seconds, MAX_TOKEN_SECONDS)
        bound = spec.get("boundObjectRef")
        bound_object = None
        if bound:
            kind = bound.get("kind")
            key = {"Pod": "core/pods", "Secret": "core/secrets"}.get(kind or "")
            if key is None:
                raise errors.bad_request(f"cannot bind token to object of kind {kind}")
            obj = self.server.store.get(key, target.namespace, bound.get("name", ""))
            if obj is None or (bound.get("uid") and bound["uid"] != obj["metadata"]["uid"]):
                raise errors.not_found("", f"{kind.lower()}s", bound.get("name", ""))
            bound_object = {"kind": kind, "name": bound.get("name", ""), "uid": obj["metadata"]["uid"]}
        audiences = spec.get("audiences") or [self.server.token_issuer]
        token, expires = issue_service_account_token(
            self.server.pki.sa_key_path.read_bytes(), namespace=target.namespace, name=target.name,
            uid=sa["metadata"]["uid"], audiences=audiences, expiration_seconds=seconds,
            issuer=self.server.token_issuer, bound_object=bound_object)
        body["apiVersion"], body["kind"] = "authentication.k8s.io/v1", "TokenRequest"
        body.setdefault("metadata", {}).update({"name": target.name, "namespace": target.namespace})
        body["spec"] = {**spec, "audiences": audiences, "expirationSeconds": seconds}
        body["status"] = {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return json_response(body, 201)

    async def _binding(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        body = await decode_body(request)
        node = ((body or {}).get("target") or {}).get("name", "")
        if not node:
            raise errors.bad_request("a Binding needs target.name")
        pod = self.server.service.get(target.info, target.namespace, target.name)
        if (pod.get("spec") or {}).get("nodeName"):
            raise errors.conflict("", "pods", target.name, f"pod {target.name} is already assigned to node "
                                  f"\"{pod['spec']['nodeName']}\"")
        pod["spec"]["nodeName"] = node
        await self.server.service.update(target.info, target.namespace, target.name, pod,
                                         WriteContext(user=user, field_manager="scheduler"))
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self.server.service.get(target.info, target.namespace, target.name)
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise errors.bad_request(f"a container name must be specified for pod {target.name}, choose one of: "
                                     f"[{' '.join(containers)}]")
        spec = pod.get("spec") or {}
        others = [c.get("name", "") for field in ("initContainers", "ephemeralContainers")
                  for c in spec.get(field) or []]
        if container not in containers + others:
            raise errors.bad_request(f"container {container} is not valid for pod {target.name}")
        if self.log_reader is None:
            raise errors.bad_request(f'container "{container}" in pod "{target.name}" is waiting to start: '
                                     f"no node agent runs it")
        result = await self.log_reader(target.namespace, target.name, container, dict(request.query))
        if isinstance(result, str):
            return web.Response(text=result, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            async for chunk in result:
                await response.write(chunk)
        except ConnectionResetError:
            return response  # the client stopped following
        await response.write_eof()
        return response
