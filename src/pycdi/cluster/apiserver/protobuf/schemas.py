"""Field tables (number -> JSON name and type) for the Kubernetes messages kubectl sends as protobuf.

Numbers come from the upstream ``generated.proto`` files (k8s.io/api core/v1, rbac/v1,
authorization/v1, authentication/v1 and k8s.io/apimachinery meta/v1); JSON names and the
``keep`` flag come from the Go struct tags. Only the messages kubectl's typed ``create``
generators and ``auth`` commands send are listed; unknown field numbers are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# string/bytes/bool/int64/int32: scalars. bytes become base64 text, as in JSON.
# time: metav1.Time {seconds=1, nanos=2}, an empty message being the zero time.
# fieldsv1: metav1.FieldsV1 {Raw=1}, whose raw bytes are JSON text.
# strlist: a message wrapping `repeated string items = 1` that JSON shows as a bare list
#   (authentication/v1 AttestationValue, ExtraValue).
# message: a nested message named by `ref`; map: a map whose value type is `ref`.
FieldKind = Literal[
    "string", "bytes", "bool", "int64", "int32", "time", "fieldsv1", "strlist", "message", "map"
]
MapValueKind = Literal["string", "bytes", "strlist"]


@dataclass(frozen=True)
class Field:
    """One message field: its JSON name, its type, and when a zero value is still emitted."""

    name: str
    kind: FieldKind
    repeated: bool = False
    ref: str = ""
    # Emit the value even when it is zero ("", 0, false). True for Go pointer fields, where
    # presence is meaningful (immutable: false), and for fields whose JSON tag lacks
    # omitempty, which JSON always shows. Go's protobuf marshaller writes every non-pointer
    # scalar, zero or not, so without this flag zeros are dropped as JSON's omitempty would.
    keep: bool = False


Schema = dict[int, Field]


def _s(name: str, keep: bool = False) -> Field:
    return Field(name, "string", keep=keep)


def _rs(name: str) -> Field:
    return Field(name, "string", repeated=True)


def _msg(name: str, ref: str, repeated: bool = False) -> Field:
    return Field(name, "message", repeated=repeated, ref=ref)


def _map(name: str, value: MapValueKind) -> Field:
    return Field(name, "map", ref=value)


def _opt_bool(name: str) -> Field:
    return Field(name, "bool", keep=True)


_META: Final = _msg("metadata", "ObjectMeta")

MESSAGES: Final[dict[str, Schema]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {
        1: _s("name"),
        2: _s("generateName"),
        3: _s("namespace"),
        4: _s("selfLink"),
        5: _s("uid"),
        6: _s("resourceVersion"),
        7: Field("generation", "int64"),
        8: Field("creationTimestamp", "time"),
        9: Field("deletionTimestamp", "time"),
        10: Field("deletionGracePeriodSeconds", "int64", keep=True),
        11: _map("labels", "string"),
        12: _map("annotations", "string"),
        13: _msg("ownerReferences", "OwnerReference", repeated=True),
        14: _rs("finalizers"),
        17: _msg("managedFields", "ManagedFieldsEntry", repeated=True),
    },
    "OwnerReference": {
        5: _s("apiVersion", keep=True),
        1: _s("kind", keep=True),
        3: _s("name", keep=True),
        4: _s("uid", keep=True),
        6: _opt_bool("controller"),
        7: _opt_bool("blockOwnerDeletion"),
    },
    "ManagedFieldsEntry": {
        1: _s("manager"),
        2: _s("operation"),
        3: _s("apiVersion"),
        4: Field("time", "time"),
        6: _s("fieldsType"),
        7: Field("fieldsV1", "fieldsv1"),
        8: _s("subresource"),
    },
    "LabelSelector": {
        1: _map("matchLabels", "string"),
        2: _msg("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {1: _s("key", keep=True), 2: _s("operator", keep=True), 3: _rs("values")},
    "FieldSelectorRequirement": {1: _s("key", keep=True), 2: _s("operator", keep=True), 3: _rs("values")},
    # k8s.io/api/core/v1
    "Namespace": {1: _META, 2: _msg("spec", "NamespaceSpec"), 3: _msg("status", "NamespaceStatus")},
    "NamespaceSpec": {1: _rs("finalizers")},
    "NamespaceStatus": {1: _s("phase"), 2: _msg("conditions", "NamespaceCondition", repeated=True)},
    "NamespaceCondition": {
        1: _s("type", keep=True),
        2: _s("status", keep=True),
        4: Field("lastTransitionTime", "time"),
        5: _s("reason"),
        6: _s("message"),
    },
    "ConfigMap": {
        1: _META,
        4: _opt_bool("immutable"),
        2: _map("data", "string"),
        3: _map("binaryData", "bytes"),
    },
    "Secret": {
        1: _META,
        5: _opt_bool("immutable"),
        2: _map("data", "bytes"),
        4: _map("stringData", "string"),
        3: _s("type"),
    },
    "ServiceAccount": {
        1: _META,
        2: _msg("secrets", "ObjectReference", repeated=True),
        3: _msg("imagePullSecrets", "LocalObjectReference", repeated=True),
        4: _opt_bool("automountServiceAccountToken"),
    },
    "ObjectReference": {
        1: _s("kind"),
        2: _s("namespace"),
        3: _s("name"),
        4: _s("uid"),
        5: _s("apiVersion"),
        6: _s("resourceVersion"),
        7: _s("fieldPath"),
    },
    "LocalObjectReference": {1: _s("name")},
    # k8s.io/api/rbac/v1
    "Role": {1: _META, 2: _msg("rules", "PolicyRule", repeated=True)},
    "ClusterRole": {
        1: _META,
        2: _msg("rules", "PolicyRule", repeated=True),
        3: _msg("aggregationRule", "AggregationRule"),
    },
    "PolicyRule": {
        1: _rs("verbs"),
        2: _rs("apiGroups"),
        3: _rs("resources"),
        4: _rs("resourceNames"),
        5: _rs("nonResourceURLs"),
    },
    "AggregationRule": {1: _msg("clusterRoleSelectors", "LabelSelector", repeated=True)},
    "RoleBinding": {1: _META, 2: _msg("subjects", "Subject", repeated=True), 3: _msg("roleRef", "RoleRef")},
    "ClusterRoleBinding": {
        1: _META,
        2: _msg("subjects", "Subject", repeated=True),
        3: _msg("roleRef", "RoleRef"),
    },
    "Subject": {1: _s("kind", keep=True), 2: _s("apiGroup"), 3: _s("name", keep=True), 4: _s("namespace")},
    "RoleRef": {1: _s("apiGroup", keep=True), 2: _s("kind", keep=True), 3: _s("name", keep=True)},
    # k8s.io/api/authorization/v1
    "SelfSubjectAccessReview": {
        1: _META,
        2: _msg("spec", "SelfSubjectAccessReviewSpec"),
        3: _msg("status", "SubjectAccessReviewStatus"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: _msg("resourceAttributes", "ResourceAttributes"),
        2: _msg("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: _s("namespace"),
        2: _s("verb"),
        3: _s("group"),
        4: _s("version"),
        5: _s("resource"),
        6: _s("subresource"),
        7: _s("name"),
        8: _msg("fieldSelector", "FieldSelectorAttributes"),
        9: _msg("labelSelector", "LabelSelectorAttributes"),
    },
    "NonResourceAttributes": {1: _s("path"), 2: _s("verb")},
    "FieldSelectorAttributes": {
        1: _s("rawSelector"),
        2: _msg("requirements", "FieldSelectorRequirement", repeated=True),
    },
    "LabelSelectorAttributes": {
        1: _s("rawSelector"),
        2: _msg("requirements", "LabelSelectorRequirement", repeated=True),
    },
    "SubjectAccessReviewStatus": {
        1: Field("allowed", "bool", keep=True),
        4: Field("denied", "bool"),
        2: _s("reason"),
        3: _s("evaluationError"),
    },
    "SelfSubjectRulesReview": {
        1: _META,
        2: _msg("spec", "SelfSubjectRulesReviewSpec"),
        3: _msg("status", "SubjectRulesReviewStatus"),
    },
    "SelfSubjectRulesReviewSpec": {1: _s("namespace")},
    "SubjectRulesReviewStatus": {
        1: _msg("resourceRules", "ResourceRule", repeated=True),
        2: _msg("nonResourceRules", "NonResourceRule", repeated=True),
        3: Field("incomplete", "bool", keep=True),
        4: _s("evaluationError"),
    },
    "ResourceRule": {1: _rs("verbs"), 2: _rs("apiGroups"), 3: _rs("resources"), 4: _rs("resourceNames")},
    "NonResourceRule": {1: _rs("verbs"), 2: _rs("nonResourceURLs")},
    # k8s.io/api/authentication/v1 (v1beta1 and v1alpha1 SelfSubjectReview reuse v1 UserInfo)
    "TokenRequest": {1: _META, 2: _msg("spec", "TokenRequestSpec"), 3: _msg("status", "TokenRequestStatus")},
    "TokenRequestSpec": {
        1: _rs("audiences"),
        4: Field("expirationSeconds", "int64", keep=True),
        3: _msg("boundObjectRef", "BoundObjectReference"),
        5: _map("attestations", "strlist"),
    },
    "BoundObjectReference": {1: _s("kind"), 2: _s("apiVersion"), 3: _s("name"), 4: _s("uid")},
    "TokenRequestStatus": {1: _s("token", keep=True), 2: Field("expirationTimestamp", "time")},
    "SelfSubjectReview": {1: _META, 2: _msg("status", "SelfSubjectReviewStatus")},
    "SelfSubjectReviewStatus": {1: _msg("userInfo", "UserInfo")},
    "UserInfo": {1: _s("username"), 2: _s("uid"), 3: _rs("groups"), 4: _map("extra", "strlist")},
}

# (apiVersion, kind) -> top-level message. The message name equals the kind for all of them.
_TOP_LEVEL: Final[dict[str, tuple[str, ...]]] = {
    "v1": ("Namespace", "ConfigMap", "Secret", "ServiceAccount"),
    "rbac.authorization.k8s.io/v1": ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"),
    "authorization.k8s.io/v1": ("SelfSubjectAccessReview", "SelfSubjectRulesReview"),
    "authentication.k8s.io/v1": ("TokenRequest", "SelfSubjectReview"),
    "authentication.k8s.io/v1beta1": ("SelfSubjectReview",),
    "authentication.k8s.io/v1alpha1": ("SelfSubjectReview",),
}

TOP_LEVEL_MESSAGES: Final[dict[tuple[str, str], str]] = {
    (api_version, kind): kind for api_version, kinds in _TOP_LEVEL.items() for kind in kinds
}
