"""Create-only virtual resources: access, rules, token and self-subject reviews, and those an embedder adds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors
from ..rbac import Attributes, UserInfo
from .bodies import decode_body
from .handlers import json_response
from .paths import Target
from .virtual import VirtualRequest

if TYPE_CHECKING:
    from .app import APIServer

Obj = dict[str, Any]


def _user_dict(user: UserInfo) -> Obj:
    out: Obj = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


class Reviews:
    """Answers SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview,
    SelfSubjectRulesReview, TokenReview and SelfSubjectReview the way kube-apiserver does."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    async def handle(self, request: web.Request, target: Target, user: UserInfo) -> web.StreamResponse:
        if request.method != "POST" or target.name:
            raise errors.method_not_allowed()
        body = await decode_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        info = target.info
        body["apiVersion"], body["kind"] = info.api_version, info.kind
        virtual = self.server.virtual.handler(info)
        if virtual is not None:
            return json_response(await virtual(VirtualRequest(body, target.namespace, user)), 201)
        spec = body.get("spec") or {}
        handler = {
            "subjectaccessreviews": self._sar,
            "localsubjectaccessreviews": self._sar,
            "selfsubjectaccessreviews": self._ssar,
            "selfsubjectrulesreviews": self._ssrr,
            "tokenreviews": self._token_review,
            "selfsubjectreviews": self._self_subject,
        }[info.plural]
        body["status"] = handler(spec, user, target)
        body.setdefault("metadata", {})
        return json_response(body, 201)

    def _access(self, who: UserInfo, spec: Obj, namespace_override: str = "") -> Obj:
        ra = spec.get("resourceAttributes")
        nra = spec.get("nonResourceAttributes")
        if ra:
            attrs = Attributes(user=who, verb=ra.get("verb", ""), namespace=namespace_override or ra.get(
                "namespace", ""), api_group=ra.get("group", ""), resource=ra.get("resource", ""),
                subresource=ra.get("subresource", ""), name=ra.get("name", ""))
        elif nra:
            attrs = Attributes(user=who, verb=nra.get("verb", ""), path=nra.get("path", ""),
                               resource_request=False)
        else:
            raise errors.invalid("authorization.k8s.io", "SubjectAccessReview", "", [{
                "reason": "FieldValueRequired", "message": "Required value: exactly one of nonResourceAttributes "
                "or resourceAttributes must be specified", "field": "spec.resourceAttributes"}])
        decision = self.server.authorizer.authorize(attrs)
        status: Obj = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status

    def _sar(self, spec: Obj, user: UserInfo, target: Target) -> Obj:
        if not spec.get("user") and not spec.get("groups"):
            raise errors.invalid("authorization.k8s.io", "SubjectAccessReview", "", [{
                "reason": "FieldValueRequired", "message": "Required value: at least one of user or group must be "
                "specified", "field": "spec.user"}])
        who = UserInfo(name=spec.get("user", ""), uid=spec.get("uid", ""), groups=tuple(spec.get("groups") or ()),
                       extra={k: tuple(v) for k, v in (spec.get("extra") or {}).items()})
        return self._access(who, spec, target.namespace)

    def _ssar(self, spec: Obj, user: UserInfo, target: Target) -> Obj:
        return self._access(user, spec)

    def _ssrr(self, spec: Obj, user: UserInfo, target: Target) -> Obj:
        namespace = spec.get("namespace", "") or "default"
        resource_rules, non_resource_rules, incomplete = self.server.authorizer.rules_for(user, namespace)
        return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                "incomplete": incomplete}

    def _token_review(self, spec: Obj, user: UserInfo, target: Target) -> Obj:
        token = spec.get("token", "")
        who = self.server.authenticator.authenticate(f"Bearer {token}") if token else None
        if who is None:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        return {"authenticated": True, "user": _user_dict(who), "audiences": spec.get("audiences") or []}

    def _self_subject(self, spec: Obj, user: UserInfo, target: Target) -> Obj:
        return {"userInfo": _user_dict(user)}
