"""Who may clone from another namespace (upstream's `authorize_utils.go`): the SubjectAccessReviews asked in the
source namespace, for a user (the DataVolume webhook) or a ServiceAccount (a VM's `dataVolumeTemplates`).

A PVC source is allowed when either review is: `create` on `datavolumes/source` (group cdi.kubevirt.io) or `create`
on `pods`, both naming the source claim. Same namespace is always allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

Obj = dict[str, Any]
CLONE_SOURCE_SUBRESOURCE: Final = "source"
CDI_GROUP: Final = "cdi.kubevirt.io"
DEFAULT_SERVICE_ACCOUNT: Final = "default"
#: KubeVirt's event on a VM whose ServiceAccount may not clone a template's source.
UNAUTHORIZED_DATA_VOLUME_CREATE: Final = "UnauthorizedDataVolumeCreate"


@dataclass(frozen=True)
class CloneSource:
    namespace: str
    name: str


def clone_source(dv: Obj, default_namespace: str = "") -> CloneSource | None:
    """The PVC a DataVolume (or a VM's template) clones, its namespace defaulted to the DataVolume's."""
    source = (dv.get("spec") or {}).get("source") or {}
    pvc = source.get("pvc")
    if not isinstance(pvc, dict):
        return None
    namespace = str(pvc.get("namespace") or (dv.get("metadata") or {}).get("namespace") or default_namespace)
    return CloneSource(namespace, str(pvc.get("name") or ""))


def resource_attributes(namespace: str, name: str) -> list[Obj]:
    """getResourceAttributesPvc: the two reviews, in upstream's order."""
    return [
        {"namespace": namespace, "verb": "create", "group": CDI_GROUP, "resource": "datavolumes",
         "subresource": CLONE_SOURCE_SUBRESOURCE, "name": name},
        {"namespace": namespace, "verb": "create", "group": "", "resource": "pods", "name": name},
    ]


def user_spec(username: str, groups: Sequence[str], extra: Mapping[str, Sequence[str]] | None = None) -> Obj:
    spec: Obj = {"user": username, "groups": list(groups)}
    if extra:
        spec["extra"] = {k: list(v) for k, v in extra.items()}
    return spec


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_spec(namespace: str, name: str) -> Obj:
    """CanServiceAccountClonePVC: the ServiceAccount's user and the groups every ServiceAccount has."""
    return {"user": service_account_user(namespace, name),
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]}


def reviews(spec: Obj, source: CloneSource) -> list[Obj]:
    """The SubjectAccessReview bodies to send; the clone is allowed as soon as one is."""
    return [{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {**spec, "resourceAttributes": attrs}}
            for attrs in resource_attributes(source.namespace, source.name)]


def denied_message(username: str, namespace: str) -> str:
    return f"User {username} has insufficient permissions in clone source namespace {namespace}"
