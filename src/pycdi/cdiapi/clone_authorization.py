"""`datavolume-mutate.cdi.kubevirt.io`: clone authorization, as upstream's DataVolume mutating webhook.

A DataVolume cloning a PVC of another namespace is admitted only when the requesting user may `create`
`datavolumes/source` (or `pods`) in the source namespace, asked by SubjectAccessReview; the refusal carries
upstream's message on field `spec.source.PVC.namespace`. On creation a clone DataVolume gets a signed clone token
(annotation `cdi.kubevirt.io/storage.clone.token`) naming the source and the target: the controller exchanges it
for a long-lived one bound to the DataVolume's UID, and nothing else may start a cross-namespace clone.
Pre-populated and static DataVolumes (`storage.prePopulated`, `storage.checkStaticVolume`) need no token and are
admitted without one when the check fails, as upstream.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..api import cloneauth
from ..api import constants as c
from ..api.clonetoken import ClonePayload, CloneTokens
from .datavolume_validation import AdmissionError, Lookup, cause
from .webhook import error, rejection

Obj = dict[str, Any]
DATAVOLUME_MUTATE = "datavolume-mutate.cdi.kubevirt.io"
DENIED_FIELD = "spec.source.PVC.namespace"


class AccessReviewer(Protocol):
    """Answers a SubjectAccessReview (`{"spec": {...}}`): True when allowed. On a real cluster this POSTs it to
    the API server; embedded, the server's own authorizer answers in-process."""

    async def allowed(self, review: Obj) -> bool: ...


@dataclass(frozen=True)
class Requester:
    """`AdmissionRequest.userInfo`."""

    username: str
    groups: Sequence[str] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)


async def may_clone(spec: Obj, source: cloneauth.CloneSource, reviewer: AccessReviewer) -> bool:
    """sendSubjectAccessReviewsPvc: either review allowing is enough (asked in upstream's order)."""
    for review in cloneauth.reviews(spec, source):
        if await reviewer.allowed(review):
            return True
    return False


@dataclass(frozen=True)
class Decision:
    """`None` result: admit, with `annotations` to add (the token); else the refusal's Status."""

    result: Obj | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def _no_token_okay(dv: Obj) -> bool:
    annotations = (dv.get("metadata") or {}).get("annotations") or {}
    return c.ANN_PRE_POPULATED in annotations or c.ANN_CHECK_STATIC_VOLUME in annotations


async def authorize(dv: Obj, *, create: bool, namespace: str, user: Requester, reviewer: AccessReviewer,
                    lookup: Lookup, tokens: CloneTokens | None) -> Decision:
    """AuthorizeUser + the token of a create. Raises AdmissionError when it cannot decide (upstream's 400)."""
    meta = dv.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Decision()
    target_ns, target = str(meta.get("namespace") or namespace), str(meta.get("name") or "")
    source = cloneauth.clone_source(dv, target_ns)
    if source is None:
        return Decision()  # not a clone (DataSource references are not served here)
    no_token_okay = _no_token_okay(dv)
    try:
        source_namespace = await lookup.get("namespaces", "", source.namespace)
    except Exception as e:
        raise AdmissionError(str(e)) from e
    if source_namespace is None:
        if no_token_okay:
            return Decision()
        raise AdmissionError(f'namespaces "{source.namespace}" not found')
    if source.namespace != target_ns:
        spec = cloneauth.user_spec(user.username, user.groups, user.extra)
        try:
            allowed = await may_clone(spec, source, reviewer)
        except Exception as e:
            raise AdmissionError(str(e)) from e
        if not allowed:
            if no_token_okay:
                return Decision()
            message = cloneauth.denied_message(user.username, source.namespace)
            return Decision(result=rejection([cause(message, DENIED_FIELD)]))
    if not create:
        return Decision()
    if tokens is None:
        raise AdmissionError("clone tokens cannot be issued: no signing key configured")
    payload = ClonePayload(source.name, source.namespace,
                           params={"targetNamespace": target_ns, "targetName": target})
    return Decision(annotations={c.ANN_CLONE_TOKEN: tokens.issue(payload)})


async def admit(dv: Obj, *, create: bool, namespace: str, user: Requester, reviewer: AccessReviewer,
                lookup: Lookup, tokens: CloneTokens | None) -> tuple[Obj | None, Obj]:
    """The webhook's answer: (refusal Status or None, the DataVolume as admitted)."""
    try:
        decision = await authorize(dv, create=create, namespace=namespace, user=user, reviewer=reviewer,
                                   lookup=lookup, tokens=tokens)
    except AdmissionError as e:
        return error(str(e)), dv
    if decision.result is not None:
        return decision.result, dv
    if not decision.annotations:
        return None, dv
    patched = copy.deepcopy(dv)
    patched.setdefault("metadata", {}).setdefault("annotations", {}).update(decision.annotations)
    return None, patched


__all__ = ["DATAVOLUME_MUTATE", "AccessReviewer", "Decision", "Requester", "admit", "authorize", "may_clone"]
