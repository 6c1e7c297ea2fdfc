"""The built-in resources the embedded API server serves, described as `ResourceInfo`s."""

from __future__ import annotations

from pycdi.api.builtin_schemas import builtin_schema

from .resources import ResourceInfo

_CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_CREATE_ONLY = ("create",)


def _r(group: str, version: str, plural: str, kind: str, namespaced: bool, *, short: tuple[str, ...] = (),
       categories: tuple[str, ...] = (), sub: tuple[str, ...] = (), verbs: tuple[str, ...] = _CRUD,
       stored: bool = True, singular: str = "", shares_storage_with: str = "") -> ResourceInfo:
    return ResourceInfo(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced,
                        singular=singular or kind.lower(), short_names=short, categories=categories,
                        verbs=verbs, subresources=frozenset(sub), stored=stored,
                        schema=builtin_schema(group, version, kind), shares_storage_with=shares_storage_with)


BUILTINS: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "namespaces", "Namespace", False, short=("ns",), sub=("status", "finalize"),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "nodes", "Node", False, short=("no",), sub=("status",)),
    _r("", "v1", "pods", "Pod", True, short=("po",), categories=("all",), sub=("status", "log", "binding")),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, short=("pvc",), sub=("status",)),
    _r("", "v1", "persistentvolumes", "PersistentVolume", False, short=("pv",), sub=("status",)),
    _r("", "v1", "configmaps", "ConfigMap", True, short=("cm",)),
    _r("", "v1", "secrets", "Secret", True),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, short=("sa",), sub=("token",)),
    _r("", "v1", "events", "Event", True, short=("ev",)),
    _r("", "v1", "services", "Service", True, short=("svc",), categories=("all",), sub=("status",)),
    _r("", "v1", "endpoints", "Endpoints", True, short=("ep",), singular="endpoints"),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, short=("sc",)),
    # rbac.authorization.k8s.io/v1
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    # authorization.k8s.io/v1 and authentication.k8s.io/v1: answered, never stored
    _r("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
       verbs=_CREATE_ONLY, stored=False),
    _r("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
       verbs=_CREATE_ONLY, stored=False),
    _r("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
       verbs=_CREATE_ONLY, stored=False),
    _r("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
       verbs=_CREATE_ONLY, stored=False),
    _r("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False, verbs=_CREATE_ONLY, stored=False),
    _r("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False,
       verbs=_CREATE_ONLY, stored=False),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "leases", "Lease", True),
    # events.k8s.io/v1 shares storage with core events (as kube-apiserver does)
    _r("events.k8s.io", "v1", "events", "Event", True, short=("ev",), shares_storage_with="core/events"),
    # apiextensions.k8s.io/v1
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       short=("crd", "crds"), sub=("status",)),
)
