"""How a DELETE proceeds: preconditions, propagation finalizers, graceful pod deletion and namespace termination.

The decisions are pure functions of the stored object and the DeleteOptions; `ObjectService.delete` applies them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from . import errors
from .resources import ResourceInfo

Obj = dict[str, Any]
Action = Literal["now", "unchanged", "defer"]

CRD_RESOURCE = ("apiextensions.k8s.io", "customresourcedefinitions")
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_preconditions(info: ResourceInfo, name: str, meta: Obj, options: Obj) -> None:
    """DeleteOptions.preconditions: a uid or resourceVersion that no longer matches is a 409."""
    pre = options.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise errors.conflict(info.group, info.plural, name,
                              f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                              f"{meta.get('uid')}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise errors.conflict(info.group, info.plural, name,
                              f"Precondition failed: ResourceVersion in precondition: "
                              f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                              f"{meta.get('resourceVersion')}")


def pod_grace_seconds(pod: Obj, options: Obj) -> int:
    """kube's pod CheckGracefulDelete: the request's period, else the pod's; 0 when unscheduled or finished."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    period = options.get("gracePeriodSeconds")
    if period is None:
        period = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(period or 0), 0)


def _finalizers(info: ResourceInfo, meta: Obj, options: Obj) -> list[str]:
    """The object's finalizers plus those the propagation policy (and, for CRDs, cleanup) adds."""
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is not None:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    finalizers = list(meta.get("finalizers") or [])
    if policy == "Orphan" and "orphan" not in finalizers:
        finalizers.append("orphan")
    elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
    if (info.group, info.plural) == CRD_RESOURCE and CRD_CLEANUP_FINALIZER not in finalizers:
        # As kube-apiserver: a CRD goes only after its custom resources (the CRD loop removes this).
        finalizers.append(CRD_CLEANUP_FINALIZER)
    return finalizers


def plan(info: ResourceInfo, old: Obj, options: Obj, now: datetime | None = None) -> tuple[Action, Obj]:
    """("now", old): remove at once; ("unchanged", old): already being deleted as asked; ("defer", new): store
    `new`, which carries deletionTimestamp, and let finalizers, the node agent or the namespace loop finish."""
    now = now or datetime.now(UTC)
    meta = old["metadata"]
    finalizers = _finalizers(info, meta, options)
    grace = pod_grace_seconds(old, options) if (info.group, info.plural) == ("", "pods") else 0
    new = copy.deepcopy(old)
    if grace > 0:
        # Graceful pod deletion: the node agent stops the containers, then deletes with grace 0.
        if meta.get("deletionTimestamp") and int(meta.get("deletionGracePeriodSeconds") or 0) <= grace:
            return "unchanged", old
        new["metadata"]["deletionTimestamp"] = rfc3339(now + timedelta(seconds=grace))
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        return "defer", new
    if (info.group, info.plural) == ("", "namespaces") and (old.get("spec") or {}).get("finalizers"):
        # Namespaces wait for the namespace loop to empty them (spec.finalizers: ["kubernetes"]).
        new["metadata"].setdefault("deletionTimestamp", rfc3339(now))
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
        new.setdefault("status", {})["phase"] = "Terminating"
        return "defer", new
    if finalizers:
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return "unchanged", old
        new["metadata"].setdefault("deletionTimestamp", rfc3339(now))
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["metadata"]["finalizers"] = finalizers
        return "defer", new
    return "now", old
