"""Validation of StorageClasses, RBAC objects and CustomResourceDefinitions (kube's rules and messages)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.validation import validate

RBAC = "rbac.authorization.k8s.io"
SC = ResourceInfo("storage.k8s.io", "v1", "storageclasses", "StorageClass", False)
ROLE = ResourceInfo(RBAC, "v1", "roles", "Role", True)
CROLE = ResourceInfo(RBAC, "v1", "clusterroles", "ClusterRole", False)
RB = ResourceInfo(RBAC, "v1", "rolebindings", "RoleBinding", True)
CRB = ResourceInfo(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False)
CRD = ResourceInfo(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


def causes(
    info: ResourceInfo,
    body: dict[str, Any],
    old: dict[str, Any] | None = None,
    name: str = "x",
) -> list[tuple[str, str, str]]:
    meta = {"name": name, "namespace": "default"} if info.namespaced else {"name": name}
    full = {"metadata": meta, **body}
    old_full = None if old is None else {"metadata": meta, **old}
    return [(c["reason"], c["field"], c["message"]) for c in validate(info, full, old_full)]


SC_OK = {
    "provisioner": "kubevirt.io/hostpath-provisioner",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
    "parameters": {"pool": "a"},
}


def test_storageclass() -> None:
    assert causes(SC, SC_OK) == []
    assert causes(SC, {}) == [("FieldValueRequired", "provisioner", "Required value")]
    assert causes(SC, {**SC_OK, "reclaimPolicy": "Recycle"}) == [
        (
            "FieldValueNotSupported",
            "reclaimPolicy",
            'Unsupported value: "Recycle": supported values: "Delete", "Retain"',
        )
    ]
    assert causes(SC, {**SC_OK, "volumeBindingMode": "Later"}) == [
        (
            "FieldValueNotSupported",
            "volumeBindingMode",
            'Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"',
        )
    ]
    assert causes(SC, {**SC_OK, "provisioner": "a b"})[0][:2] == ("FieldValueInvalid", "provisioner")
    changed = {
        **SC_OK,
        "provisioner": "other.io/p",
        "parameters": {},
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert causes(SC, changed, SC_OK) == [
        ("FieldValueForbidden", "parameters", "Forbidden: updates to parameters are forbidden."),
        ("FieldValueForbidden", "provisioner", "Forbidden: updates to provisioner are forbidden."),
        ("FieldValueForbidden", "reclaimPolicy", "Forbidden: updates to reclaimPolicy are forbidden."),
        (
            "FieldValueInvalid",
            "volumeBindingMode",
            'Invalid value: "WaitForFirstConsumer": field is immutable',
        ),
    ]
    labelled = copy.deepcopy(SC_OK)
    assert causes(SC, labelled, SC_OK) == []


RULE = {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"], "verbs": ["get"]}


@pytest.mark.parametrize(
    ("info", "rules", "expected"),
    [
        (ROLE, [RULE], []),
        (
            ROLE,
            [{**RULE, "verbs": []}],
            [
                (
                    "FieldValueRequired",
                    "rules[0].verbs",
                    "Required value: verbs must contain at least one value",
                )
            ],
        ),
        (
            ROLE,
            [{"verbs": ["get"]}],
            [
                (
                    "FieldValueRequired",
                    "rules[0].apiGroups",
                    "Required value: resource rules must supply at least one api group",
                ),
                (
                    "FieldValueRequired",
                    "rules[0].resources",
                    "Required value: resource rules must supply at least one resource",
                ),
            ],
        ),
        (
            ROLE,
            [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            [
                (
                    "FieldValueInvalid",
                    "rules[0].nonResourceURLs",
                    'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs',
                )
            ],
        ),
        (CROLE, [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}], []),
        (
            CROLE,
            [{**RULE, "nonResourceURLs": ["/x"]}],
            [
                (
                    "FieldValueInvalid",
                    "rules[0].nonResourceURLs",
                    'Invalid value: []string{"/x"}: rules cannot apply to both regular resources '
                    "and non-resource URLs",
                )
            ],
        ),
    ],
)
def test_roles(info: ResourceInfo, rules: list[Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes(info, {"rules": rules}) == expected


def test_clusterrole_aggregation() -> None:
    assert causes(CROLE, {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}) == []
    assert causes(CROLE, {"aggregationRule": {}}) == [
        (
            "FieldValueRequired",
            "aggregationRule.clusterRoleSelectors",
            "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
        )
    ]


REF = {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"}
SA = {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}


@pytest.mark.parametrize(
    ("info", "body", "expected"),
    [
        (
            RB,
            {
                "roleRef": REF,
                "subjects": [
                    SA,
                    {"kind": "User", "name": "alice"},
                    {"kind": "Group", "name": "g", "apiGroup": RBAC},
                ],
            },
            [],
        ),
        (
            RB,
            {"roleRef": {**REF, "kind": "Role"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]},
            [],
        ),
        (CRB, {"roleRef": REF, "subjects": [SA]}, []),
        (
            RB,
            {"roleRef": {}},
            [
                (
                    "FieldValueNotSupported",
                    "roleRef.apiGroup",
                    'Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
                ),
                (
                    "FieldValueNotSupported",
                    "roleRef.kind",
                    'Unsupported value: "": supported values: "Role", "ClusterRole"',
                ),
                ("FieldValueRequired", "roleRef.name", "Required value"),
            ],
        ),
        (
            CRB,
            {"roleRef": {**REF, "kind": "Role"}},
            [
                (
                    "FieldValueNotSupported",
                    "roleRef.kind",
                    'Unsupported value: "Role": supported values: "ClusterRole"',
                )
            ],
        ),
        (
            CRB,
            {"roleRef": REF, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]},
            [("FieldValueRequired", "subjects[0].namespace", "Required value")],
        ),
        (
            RB,
            {"roleRef": REF, "subjects": [{"kind": "Robot", "name": "r"}]},
            [
                (
                    "FieldValueNotSupported",
                    "subjects[0].kind",
                    'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
                )
            ],
        ),
        (
            RB,
            {"roleRef": REF, "subjects": [{"kind": "User", "name": "u", "apiGroup": "x"}]},
            [
                (
                    "FieldValueNotSupported",
                    "subjects[0].apiGroup",
                    'Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
                )
            ],
        ),
        (
            RB,
            {"roleRef": REF, "subjects": [{**SA, "apiGroup": "x"}]},
            [
                (
                    "FieldValueNotSupported",
                    "subjects[0].apiGroup",
                    'Unsupported value: "x": supported values: ""',
                )
            ],
        ),
        (
            RB,
            {"roleRef": REF, "subjects": [{"kind": "User"}]},
            [("FieldValueRequired", "subjects[0].name", "Required value")],
        ),
    ],
)
def test_bindings(info: ResourceInfo, body: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes(info, body) == expected


def test_role_ref_is_immutable() -> None:
    old = {"roleRef": REF, "subjects": [SA]}
    assert causes(RB, {"roleRef": REF, "subjects": []}, old) == []
    assert causes(CRB, {"roleRef": {**REF, "name": "view"}}, old) == [
        (
            "FieldValueInvalid",
            "roleRef",
            'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
            'Kind:"ClusterRole", Name:"view"}: cannot change roleRef',
        )
    ]


def crd(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": "cdi.kubevirt.io",
        "scope": "Namespaced",
        "names": {
            "plural": "datavolumes",
            "singular": "datavolume",
            "kind": "DataVolume",
            "shortNames": ["dv"],
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            }
        ],
    }
    spec.update(over)
    return {"spec": spec}


NAME = "datavolumes.cdi.kubevirt.io"
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def test_crd_create() -> None:
    assert causes(CRD, crd(), name=NAME) == []
    assert causes(CRD, crd(), name="dvs.cdi.kubevirt.io") == [
        (
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "dvs.cdi.kubevirt.io": must be spec.names.plural+"."+spec.group',
        )
    ]
    assert causes(CRD, crd(group="nodot"), name="datavolumes.nodot") == [
        (
            "FieldValueInvalid",
            "spec.group",
            'Invalid value: "nodot": should be a domain with at least one dot',
        )
    ]
    assert causes(CRD, crd(scope="Global"), name=NAME) == [
        (
            "FieldValueNotSupported",
            "spec.scope",
            'Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        )
    ]
    bad_names = crd(names={"plural": "DataVolumes", "kind": "Data Volume", "listKind": "Data Volume"})
    assert causes(CRD, bad_names, name="DataVolumes.cdi.kubevirt.io")[1:] == [
        ("FieldValueInvalid", "spec.names.plural", f'Invalid value: "DataVolumes": {DNS1035}'),
        ("FieldValueInvalid", "spec.names.singular", f'Invalid value: "data volume": {DNS1035}'),
        (
            "FieldValueInvalid",
            "spec.names.kind",
            f'Invalid value: "Data Volume": may have mixed case, but should otherwise match: {DNS1035}',
        ),
        (
            "FieldValueInvalid",
            "spec.names.listKind",
            f'Invalid value: "Data Volume": may have mixed case, but should otherwise match: {DNS1035}',
        ),
        (
            "FieldValueInvalid",
            "spec.names.listKind",
            'Invalid value: "Data Volume": kind and listKind may not be the same',
        ),
    ]
    two_storage = crd(
        versions=[
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
            {"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
        ]
    )
    got = causes(CRD, two_storage, name=NAME)
    assert len(got) == 1 and got[0][:2] == ("FieldValueInvalid", "spec.versions")
    assert got[0][2].endswith(": must have exactly one version marked as storage version")
    assert causes(CRD, crd(versions=[]), name=NAME)[0][2].endswith(
        "must have exactly one version marked as storage version"
    )
    no_schema = crd(versions=[{"name": "v1", "served": True, "storage": True}])
    assert causes(CRD, no_schema, name=NAME) == [
        (
            "FieldValueRequired",
            "spec.versions[0].schema.openAPIV3Schema",
            "Required value: schemas are required",
        )
    ]
    dup = crd(
        versions=[
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
            {"name": "v1", "served": False, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
        ]
    )
    assert causes(CRD, dup, name=NAME)[0][2].endswith(": must contain unique version names")
    assert causes(CRD, crd(names={"plural": "datavolumes"}), name=NAME) == [
        ("FieldValueRequired", "spec.names.singular", "Required value"),
        ("FieldValueRequired", "spec.names.kind", "Required value"),
        ("FieldValueRequired", "spec.names.listKind", "Required value"),
    ]


def test_crd_update() -> None:
    old = crd()
    old["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    assert causes(CRD, crd(), old, name=NAME) == []
    moved = crd(scope="Cluster", group="other.io")
    moved["spec"]["names"] = {**moved["spec"]["names"], "kind": "DV"}
    got = causes(CRD, moved, old, name=NAME)
    assert ("FieldValueInvalid", "spec.scope", 'Invalid value: "Cluster": field is immutable') in got
    assert ("FieldValueInvalid", "spec.names.kind", 'Invalid value: "DV": field is immutable') in got
    assert ("FieldValueInvalid", "spec.group", 'Invalid value: "other.io": field is immutable') in got
    # Before the CRD is established, scope may still change.
    assert ("FieldValueInvalid", "spec.scope", 'Invalid value: "Cluster": field is immutable') not in causes(
        CRD, crd(scope="Cluster"), crd(), name=NAME
    )
