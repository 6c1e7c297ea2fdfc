"""core/v1 validation: PVCs, PVs, pods, configmaps, secrets, services, endpoints, events, leases."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.validation import validate


def ri(plural: str, kind: str, namespaced: bool = True, group: str = "") -> ResourceInfo:
    return ResourceInfo(group, "v1", plural, kind, namespaced)


PVC, PV, POD = (
    ri("persistentvolumeclaims", "PersistentVolumeClaim"),
    ri("persistentvolumes", "PersistentVolume", False),
    ri("pods", "Pod"),
)
CM, SECRET, SVC = ri("configmaps", "ConfigMap"), ri("secrets", "Secret"), ri("services", "Service")
EP, EVENT, NS = ri("endpoints", "Endpoints"), ri("events", "Event"), ri("namespaces", "Namespace", False)
EVENT_V1 = ri("events", "Event", group="events.k8s.io")
LEASE = ri("leases", "Lease", group="coordination.k8s.io")


def causes(
    info: ResourceInfo,
    body: dict[str, Any],
    old: dict[str, Any] | None = None,
) -> list[tuple[str, str, str]]:
    meta = {"name": "x"} if not info.namespaced else {"name": "x", "namespace": "default"}
    full = {"metadata": meta, **body}
    old_full = None if old is None else {"metadata": meta, **old}
    return [(c["reason"], c["field"], c["message"]) for c in validate(info, full, old_full)]


def pvc_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    spec.update(over)
    return {"spec": spec}


MODES = '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (pvc_spec(), []),
        (
            pvc_spec(
                volumeMode="Block",
                storageClassName="local",
                dataSource={"kind": "PersistentVolumeClaim", "name": "src"},
            ),
            [],
        ),
        (
            {"spec": {}},
            [
                (
                    "FieldValueRequired",
                    "spec.accessModes",
                    "Required value: at least 1 access mode is required",
                ),
                ("FieldValueRequired", "spec.resources[storage]", "Required value"),
            ],
        ),
        (
            pvc_spec(accessModes=["ReadWriteSometimes"]),
            [
                (
                    "FieldValueNotSupported",
                    "spec.accessModes",
                    f'Unsupported value: "ReadWriteSometimes": supported values: {MODES}',
                )
            ],
        ),
        (
            pvc_spec(accessModes=["ReadWriteOncePod", "ReadWriteOnce"]),
            [
                (
                    "FieldValueForbidden",
                    "spec.accessModes",
                    "Forbidden: may not use ReadWriteOncePod with other access modes",
                )
            ],
        ),
        (
            pvc_spec(resources={"requests": {"storage": "0"}}),
            [
                (
                    "FieldValueInvalid",
                    "spec.resources[storage]",
                    'Invalid value: "0": must be greater than zero',
                )
            ],
        ),
        (
            pvc_spec(resources={"requests": {"storage": "-1Gi"}}),
            [
                (
                    "FieldValueInvalid",
                    "spec.resources[storage]",
                    'Invalid value: "-1Gi": must be greater than zero',
                )
            ],
        ),
        (
            pvc_spec(resources={"requests": {"storage": "ten"}}),
            [
                (
                    "FieldValueInvalid",
                    "spec.resources[storage]",
                    'Invalid value: "ten": quantities must match the regular '
                    "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )
            ],
        ),
        (
            pvc_spec(volumeMode="Raw"),
            [
                (
                    "FieldValueNotSupported",
                    "spec.volumeMode",
                    'Unsupported value: "Raw": supported values: "Block", "Filesystem"',
                )
            ],
        ),
        (
            pvc_spec(dataSource={"kind": "Snapshot", "name": "s"}),
            [
                (
                    "FieldValueInvalid",
                    "spec.dataSource",
                    "Invalid value: \"Snapshot\": must be 'PersistentVolumeClaim' when "
                    "referencing the default apiGroup",
                )
            ],
        ),
        (
            pvc_spec(selector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
            [
                (
                    "FieldValueRequired",
                    "spec.selector.matchExpressions[0].values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            ],
        ),
    ],
)
def test_pvc_create(body: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes(PVC, body) == expected


def bound(storage: str = "10Gi", capacity: str = "10Gi", **over: Any) -> dict[str, Any]:
    body = pvc_spec(resources={"requests": {"storage": storage}}, volumeName="pv1", **over)
    body["status"] = {"phase": "Bound", "capacity": {"storage": capacity}}
    return body


def test_pvc_update_rules() -> None:
    assert causes(PVC, bound("20Gi"), bound()) == []  # expansion of a bound claim
    shrink = causes(PVC, bound("5Gi"), bound())
    assert shrink == [
        (
            "FieldValueForbidden",
            "spec.resources.requests.storage",
            "Forbidden: field can not be less than status.capacity",
        )
    ]
    # Recovering from a failed expansion: back down, but still above the real capacity.
    assert causes(PVC, bound("8Gi", "5Gi"), bound("20Gi", "5Gi")) == []
    changed = causes(PVC, bound(accessModes=["ReadWriteMany"]), bound())
    assert changed[0][:2] == ("FieldValueForbidden", "spec")
    assert changed[0][2].startswith(
        "Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims\n"
    )
    assert "AccessModes" in changed[0][2]
    # Unbound claims cannot change their request either.
    pending = pvc_spec()
    grown = pvc_spec(resources={"requests": {"storage": "2Gi"}})
    assert causes(PVC, grown, pending)[0][1] == "spec"
    # The binder may set volumeName once.
    assert causes(PVC, pvc_spec(volumeName="pv1"), pending) == []
    assert causes(PVC, pvc_spec(volumeName="pv2"), pvc_spec(volumeName="pv1"))[0][1] == "spec"
    assert causes(PVC, pvc_spec(volumeMode="Block"), pvc_spec(volumeMode="Filesystem"))[-1] == (
        "FieldValueInvalid",
        "volumeMode",
        'Invalid value: "Block": field is immutable',
    )


def pv(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": "5Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/var/data/pv1"},
        "persistentVolumeReclaimPolicy": "Delete",
    }
    spec.update(over)
    return {"spec": {k: v for k, v in spec.items() if v is not None}}


AFFINITY = {
    "required": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}
        ]
    }
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (pv(), []),
        (pv(hostPath=None, local={"path": "/mnt/disk"}, nodeAffinity=AFFINITY), []),
        (
            pv(hostPath=None, csi={"driver": "hostpath.csi.k8s.io", "volumeHandle": "h"}, volumeMode="Block"),
            [],
        ),
        (
            pv(capacity=None),
            [
                ("FieldValueRequired", "spec.capacity", "Required value"),
                (
                    "FieldValueNotSupported",
                    "spec.capacity",
                    'Unsupported value: map[string]string{}: supported values: "storage"',
                ),
            ],
        ),
        (pv(accessModes=None), [("FieldValueRequired", "spec.accessModes", "Required value")]),
        (pv(hostPath=None), [("FieldValueRequired", "spec", "Required value: must specify a volume type")]),
        (
            pv(nfs={"server": "s", "path": "/x"}),
            [("FieldValueForbidden", "spec.nfs", "Forbidden: may not specify more than 1 volume type")],
        ),
        (
            pv(hostPath=None, local={"path": "/mnt/disk"}),
            [
                (
                    "FieldValueRequired",
                    "spec.nodeAffinity",
                    "Required value: Local volume requires node affinity",
                )
            ],
        ),
        (
            pv(persistentVolumeReclaimPolicy="Keep"),
            [
                (
                    "FieldValueNotSupported",
                    "spec.persistentVolumeReclaimPolicy",
                    'Unsupported value: "Keep": supported values: "Delete", "Recycle", "Retain"',
                )
            ],
        ),
        (pv(hostPath={"path": ""}), [("FieldValueRequired", "spec.hostPath.path", "Required value")]),
        (
            pv(hostPath={"path": "/a/../b"}),
            [
                (
                    "FieldValueInvalid",
                    "spec.hostPath.path",
                    "Invalid value: \"/a/../b\": must not contain '..'",
                )
            ],
        ),
        (
            pv(capacity={"storage": "0"}),
            [
                (
                    "FieldValueInvalid",
                    "spec.capacity[storage]",
                    'Invalid value: "0": must be greater than zero',
                )
            ],
        ),
    ],
)
def test_pv_create(body: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes(PV, body) == expected


def test_pv_update_source_immutable() -> None:
    assert causes(PV, pv(claimRef={"name": "c", "namespace": "d"}), pv()) == []
    got = causes(PV, pv(hostPath={"path": "/elsewhere"}), pv())
    assert got[0][:2] == ("FieldValueForbidden", "spec.persistentvolumesource")
    assert got[0][2].startswith("Forbidden: spec.persistentvolumesource is immutable after creation\n")


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"spec": {"containers": list(containers), **spec}}


C = {"name": "main", "image": "busybox"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (pod(C), []),
        (
            pod(
                {**C, "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}}],
                restartPolicy="Never",
            ),
            [],
        ),
        (pod(), [("FieldValueRequired", "spec.containers", "Required value")]),
        (pod({"name": "main"}), [("FieldValueRequired", "spec.containers[0].image", "Required value")]),
        (pod({"image": "x"}), [("FieldValueRequired", "spec.containers[0].name", "Required value")]),
        (pod(C, C), [("FieldValueDuplicate", "spec.containers[1].name", 'Duplicate value: "main"')]),
        (
            pod(C, restartPolicy="Sometimes"),
            [
                (
                    "FieldValueNotSupported",
                    "spec.restartPolicy",
                    'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
                )
            ],
        ),
        (
            pod({**C, "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}),
            [("FieldValueNotFound", "spec.containers[0].volumeMounts[0].name", 'Not found: "nope"')],
        ),
        (
            pod(C, volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
            [("FieldValueDuplicate", "spec.volumes[1].name", 'Duplicate value: "v"')],
        ),
        (
            pod(C, volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
            [
                (
                    "FieldValueForbidden",
                    "spec.volumes[0].emptyDir",
                    "Forbidden: may not specify more than 1 volume type",
                )
            ],
        ),
        (
            pod(C, activeDeadlineSeconds=0),
            [
                (
                    "FieldValueInvalid",
                    "spec.activeDeadlineSeconds",
                    "Invalid value: 0: must be between 1 and 2147483647, inclusive",
                )
            ],
        ),
    ],
)
def test_pod_create(body: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert causes(POD, body) == expected


def test_pod_update() -> None:
    old = pod(C, tolerations=[{"key": "a", "operator": "Exists"}], activeDeadlineSeconds=100)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    new["spec"]["activeDeadlineSeconds"] = 50
    assert causes(POD, new, old) == []
    bigger = copy.deepcopy(old)
    bigger["spec"]["activeDeadlineSeconds"] = 200
    assert causes(POD, bigger, old) == [
        (
            "FieldValueInvalid",
            "spec.activeDeadlineSeconds",
            "Invalid value: 200: must be less than or equal to previous value",
        )
    ]
    env = copy.deepcopy(old)
    env["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    got = causes(POD, env, old)
    assert got[0][:2] == ("FieldValueForbidden", "spec")
    assert got[0][2].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
        "(allow it to be set to 1 if it was previously negative)\n"
    )
    more = pod(C, {**C, "name": "second"}, tolerations=old["spec"]["tolerations"], activeDeadlineSeconds=100)
    assert causes(POD, more, old) == [
        ("FieldValueForbidden", "spec.containers", "Forbidden: pod updates may not add or remove containers")
    ]


CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def test_configmap() -> None:
    assert causes(CM, {"data": {"a.b-c_D": "x"}, "binaryData": {"bin": "AAE="}}) == []
    assert causes(CM, {"data": {"bad key": "x"}}) == [
        ("FieldValueInvalid", "data[bad key]", f'Invalid value: "bad key": {CONFIG_KEY}')
    ]
    assert causes(CM, {"data": {"..": "x"}}) == [
        ("FieldValueInvalid", "data[..]", "Invalid value: \"..\": must not be '..'")
    ]
    assert causes(CM, {"data": {"k": "x"}, "binaryData": {"k": "AA=="}}) == [
        ("FieldValueInvalid", "data[k]", 'Invalid value: "k": duplicate of key present in binaryData')
    ]
    assert causes(CM, {"data": {"k": "x" * (1024 * 1024 + 1)}}) == [
        ("FieldValueTooLong", "[]", "Too long: may not be more than 1048576 bytes")
    ]
    frozen = {"data": {"k": "v"}, "immutable": True}
    assert causes(CM, {"data": {"k": "v2"}, "immutable": True}, frozen) == [
        ("FieldValueForbidden", "data", "Forbidden: field is immutable when `immutable` is set")
    ]
    assert causes(CM, {"data": {"k": "v"}}, frozen) == [
        ("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set")
    ]
    assert causes(CM, {"data": {"k": "v2"}}, {"data": {"k": "v"}}) == []


def test_secret() -> None:
    assert causes(SECRET, {"type": "Opaque", "data": {"k": "dg=="}, "stringData": {"s": "t"}}) == []
    assert causes(SECRET, {"stringData": {"bad/key": "t"}})[0][:2] == ("FieldValueInvalid", "data[bad/key]")
    assert causes(SECRET, {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}) == [
        ("FieldValueRequired", "data[tls.key]", "Required value")
    ]
    assert causes(SECRET, {"type": "kubernetes.io/basic-auth"}) == [
        ("FieldValueRequired", "data[username]", "Required value"),
        ("FieldValueRequired", "data[password]", "Required value"),
    ]
    assert causes(SECRET, {"type": "kubernetes.io/service-account-token"}) == [
        ("FieldValueRequired", "metadata.annotations[kubernetes.io/service-account.name]", "Required value")
    ]
    assert causes(
        SECRET, {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}, {"type": "Opaque"}
    )[0] == ("FieldValueInvalid", "type", 'Invalid value: "kubernetes.io/tls": field is immutable')
    frozen = {"data": {"k": "dg=="}, "immutable": True}
    assert causes(SECRET, {"data": {"k": "dw=="}, "immutable": True}, frozen) == [
        ("FieldValueForbidden", "data", "Forbidden: field is immutable when `immutable` is set")
    ]


def test_service_and_endpoints() -> None:
    assert causes(SVC, {"spec": {"ports": [{"port": 80}]}}) == []
    assert causes(SVC, {"spec": {"ports": []}}) == [("FieldValueRequired", "spec.ports", "Required value")]
    assert causes(SVC, {"spec": {"clusterIP": "None"}}) == []
    assert causes(SVC, {"spec": {"ports": [{"port": 80}, {"port": 81, "name": "b"}]}}) == [
        ("FieldValueRequired", "spec.ports[0].name", "Required value")
    ]
    assert causes(SVC, {"spec": {"ports": [{"port": 0, "protocol": "HTTP"}]}}) == [
        (
            "FieldValueInvalid",
            "spec.ports[0].port",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "FieldValueNotSupported",
            "spec.ports[0].protocol",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        ),
    ]
    ok = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 8080}]}]}
    assert causes(EP, ok) == []
    assert causes(EP, {"subsets": [{"ports": [{"port": 1}]}]}) == [
        (
            "FieldValueRequired",
            "subsets[0]",
            "Required value: must specify `addresses` or `notReadyAddresses`",
        )
    ]


def test_events() -> None:
    ev = {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"}
    assert causes(EVENT, ev) == []
    wrong = {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}
    assert causes(EVENT, wrong) == [
        (
            "FieldValueInvalid",
            "involvedObject.namespace",
            'Invalid value: "other": does not match event.namespace',
        )
    ]
    v1 = {
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "cdi.kubevirt.io/importer",
        "reportingInstance": "node1",
        "action": "Import",
        "type": "Normal",
        "note": "hello",
    }
    assert causes(EVENT_V1, v1) == []
    assert causes(EVENT_V1, {**v1, "type": "Odd"}) == [
        ("FieldValueInvalid", "type", 'Invalid value: "": has invalid value: Odd')
    ]
    missing = {k: v for k, v in v1.items() if k not in ("action", "eventTime")}
    assert ("FieldValueRequired", "eventTime", "Required value") in causes(EVENT_V1, missing)
    assert causes(EVENT_V1, {**v1, "note": "changed"}, v1) == [
        ("FieldValueInvalid", "message", 'Invalid value: "changed": field is immutable')
    ]


def test_namespace_and_lease() -> None:
    assert causes(NS, {"spec": {"finalizers": ["kubernetes"]}}) == []
    assert causes(NS, {"spec": {"finalizers": ["mine"]}}) == [
        (
            "FieldValueInvalid",
            "spec.finalizers",
            'Invalid value: "mine": name is neither a standard finalizer name nor is it fully qualified',
        )
    ]
    assert causes(LEASE, {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}) == []
    assert causes(LEASE, {"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}) == [
        ("FieldValueInvalid", "spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0"),
        (
            "FieldValueInvalid",
            "spec.leaseTransitions",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
    ]
