"""Node selector terms, as the scheduler and the PV node affinity check evaluate them against a Node."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _requirement(req: Obj, values_of: dict[str, str]) -> bool:
    key = str(req.get("key") or "")
    op = req.get("operator")
    values = [str(v) for v in req.get("values") or []]
    present = key in values_of
    value = values_of.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    """A term matches when all its expressions (labels) and fields (metadata.name) match; an empty term never."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = {str(k): str(v) for k, v in ((node.get("metadata") or {}).get("labels") or {}).items()}
    names = {"metadata.name": str((node.get("metadata") or {}).get("name") or "")}
    return all(_requirement(e, labels) for e in exprs) and all(_requirement(f, names) for f in fields)


def selector_matches(selector: Obj | None, node: Obj) -> bool:
    """A NodeSelector: any of its terms matches (no selector matches every node)."""
    if not selector:
        return True
    terms = selector.get("nodeSelectorTerms") or []
    return any(term_matches(t, node) for t in terms if isinstance(t, dict))


def pod_matches_node(pod: Obj, node: Obj) -> bool:
    """The pod's nodeSelector and required node affinity (kube's NodeAffinity filter)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    return selector_matches(required, node)


def pv_matches_node(pv: Obj, node: Obj) -> bool:
    """A PV's `spec.nodeAffinity.required` against the node (no affinity: usable anywhere)."""
    required = (((pv.get("spec") or {}).get("nodeAffinity")) or {}).get("required")
    return selector_matches(required, node)
