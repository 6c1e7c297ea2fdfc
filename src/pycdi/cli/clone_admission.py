"""`datavolume-mutate.cdi.kubevirt.io` on the embedded API server: `pycdi.cdiapi`'s clone authorization with the
server's own RBAC authorizer answering its SubjectAccessReviews (exactly what a SubjectAccessReview sent to the
server would answer), and the cluster's token key signing its clone tokens."""

from __future__ import annotations

from typing import Any

from ..api.clonetoken import CloneTokens
from ..cdiapi.clone_authorization import DATAVOLUME_MUTATE, Requester, admit
from ..cluster.apiserver.admission import CREATE, UPDATE, AdmissionRequest
from ..cluster.apiserver.rbac import Attributes, Authorizer, UserInfo
from ..cluster.apiserver.service import ObjectService
from .admission import StoreLookup, webhook_denied

Obj = dict[str, Any]


class AuthorizerReviewer:
    """`cdiapi.AccessReviewer` over the server's authorizer (the same decision `POST subjectaccessreviews` gives)."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    async def allowed(self, review: Obj) -> bool:
        spec = review.get("spec") or {}
        ra = spec.get("resourceAttributes") or {}
        who = UserInfo(name=str(spec.get("user") or ""), groups=tuple(spec.get("groups") or ()),
                       extra={k: tuple(v) for k, v in (spec.get("extra") or {}).items()})
        attrs = Attributes(user=who, verb=str(ra.get("verb") or ""), namespace=str(ra.get("namespace") or ""),
                           api_group=str(ra.get("group") or ""), resource=str(ra.get("resource") or ""),
                           subresource=str(ra.get("subresource") or ""), name=str(ra.get("name") or ""))
        return self._authorizer.authorize(attrs).allowed


class DataVolumeMutation:
    """CREATE and UPDATE of datavolumes (not their status): authorize a clone, add the token on creation."""

    name = DATAVOLUME_MUTATE

    def __init__(self, service: ObjectService, authorizer: Authorizer, tokens: CloneTokens | None) -> None:
        self._lookup = StoreLookup(service)
        self._reviewer = AuthorizerReviewer(authorizer)
        self._tokens = tokens

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.info.group == "cdi.kubevirt.io" and request.info.plural == "datavolumes"
                and request.operation in (CREATE, UPDATE) and not request.subresource)

    async def mutate(self, request: AdmissionRequest) -> None:
        if request.object is None:
            return
        user = Requester(request.user.name, request.user.groups, dict(request.user.extra))
        refusal, admitted = await admit(request.object, create=request.operation == CREATE,
                                        namespace=request.namespace, user=user, reviewer=self._reviewer,
                                        lookup=self._lookup, tokens=self._tokens)
        if refusal is not None:
            raise webhook_denied(self.name, refusal)
        if admitted is not request.object:
            request.object.clear()
            request.object.update(admitted)

    async def validate(self, request: AdmissionRequest) -> None:
        return None


__all__ = ["AuthorizerReviewer", "DataVolumeMutation"]
