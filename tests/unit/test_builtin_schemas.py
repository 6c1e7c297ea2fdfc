"""The built-in kinds' schemas: structural, keep every field of realistic objects and seeds, find typos."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.api.builtin_schemas import builtin_kinds, builtin_schema
from pycdi.api.meta_schemas import object_meta
from pycdi.cluster.apiserver.builtins import BUILTINS
from pycdi.cluster.apiserver.patching.merge_keys import list_strategy
from pycdi.cluster.apiserver.schema import check_structural, prune
from tests.support.seeds import seed_documents

Obj = dict[str, Any]


def unknown_fields(obj: Obj, group: str, version: str, kind: str) -> list[str]:
    """What the API server reports for a built-in: root prune plus the typed ObjectMeta (as service.py)."""
    schema = builtin_schema(group, version, kind)
    assert schema is not None
    found = prune(obj, schema)
    if isinstance(obj.get("metadata"), dict):
        found += [f"metadata.{p}" for p in prune(obj["metadata"], schema["properties"]["metadata"])]
    return sorted(found)


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@pytest.mark.parametrize("gvk", builtin_kinds(), ids=lambda gvk: f"{gvk[0] or 'core'}-{gvk[2]}")
def test_schema_is_structural(gvk: tuple[str, str, str]) -> None:
    schema = builtin_schema(*gvk)
    assert schema is not None
    # A CRD may say nothing about metadata but name/generateName; the full ObjectMeta is checked alone.
    schema["properties"]["metadata"] = {"type": "object"}
    assert check_structural(schema) == []
    assert check_structural(object_meta()) == []


def test_every_served_builtin_has_its_schema() -> None:
    for info in BUILTINS:
        assert not info.custom
        assert info.schema == builtin_schema(info.group, info.version, info.kind), info.kind
    assert builtin_schema("", "v1", "Nope") is None
    assert builtin_schema("authentication.k8s.io", "v1", "TokenRequest") is not None


def _lists_with_merge_keys(schema: Obj, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str | None]:
    out: dict[tuple[str, ...], str | None] = {}
    if schema.get("type") == "array":
        if "x-kubernetes-patch-strategy" in schema:
            out[path] = schema.get("x-kubernetes-patch-merge-key")
        return {**out, **_lists_with_merge_keys(schema["items"], path)}
    for name, sub in (schema.get("properties") or {}).items():
        out.update(_lists_with_merge_keys(sub, (*path, name)))
    return out


@pytest.mark.parametrize("kind", ["Pod", "Node", "Service", "ServiceAccount", "PersistentVolumeClaim"])
def test_published_patch_strategies_match_the_server(kind: str) -> None:
    # kubectl builds its strategic merge patch from the published strategies; the server merges with its
    # own table: a list merged by different keys on the two sides would lose or duplicate elements.
    schema = builtin_schema("", "v1", kind)
    assert schema is not None
    published = {p: k for p, k in _lists_with_merge_keys(schema).items() if p[0] != "status" or kind != "Pod"}
    assert published
    for path, key in published.items():
        strategy = list_strategy(kind, path)
        assert strategy is not None, path
        assert strategy.merge_key == key, path


POD: Obj = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "importer-dv1", "namespace": "ns", "labels": {"app": "containerized-data-importer"},
                 "annotations": {"a": "b"}, "finalizers": ["x/y"],
                 "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "dv1",
                                      "uid": "u1", "controller": True, "blockOwnerDeletion": True}],
                 "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                                    "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
    "spec": {
        "restartPolicy": "OnFailure", "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
        "securityContext": {"fsGroup": 107, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}]}}},
        "priorityClassName": "p",
        "containers": [{
            "name": "importer", "image": "quay.io/kubevirt/cdi-importer:v1", "imagePullPolicy": "IfNotPresent",
            "command": ["/usr/bin/cdi-importer"], "args": ["-v=1"], "workingDir": "/",
            "env": [{"name": "IMPORTER_ENDPOINT", "value": "http://x"},
                    {"name": "ACCESS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "accessKeyId"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "X_"}],
            "ports": [{"name": "metrics", "containerPort": 8443, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "750m", "memory": "600M"}, "requests": {"cpu": "100m"}},
            "volumeMounts": [{"name": "cdi-data-vol", "mountPath": "/data"}],
            "volumeDevices": [{"name": "blk", "devicePath": "/dev/cdi-block-volume"}],
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8443}, "periodSeconds": 5},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError",
        }],
        "volumes": [
            {"name": "cdi-data-vol", "persistentVolumeClaim": {"claimName": "dv1", "readOnly": False}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "certs", "secret": {"secretName": "s", "defaultMode": 420, "items": [{"key": "a", "path": "b"}]}},
            {"name": "cm", "configMap": {"name": "cm", "optional": True}},
            {"name": "host", "hostPath": {"path": "/var/x", "type": "DirectoryOrCreate"}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"a": "b"}},
                                                                  "spec": {"accessModes": ["ReadWriteOnce"]}}}},
            {"name": "old", "gitRepo": {"repository": "https://x"}},
        ],
    },
    "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [{"name": "importer", "ready": True}]},
}

OBJECTS: list[Obj] = [
    POD,
    {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p", "namespace": "n"},
     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
              "storageClassName": "local", "volumeMode": "Block", "volumeName": "pv1",
              "dataSourceRef": {"apiGroup": "cdi.kubevirt.io", "kind": "VolumeImportSource", "name": "s"},
              "selector": {"matchLabels": {"a": "b"}}},
     "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                "conditions": [{"type": "Resizing", "status": "True"}]}},
    {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
     "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/v/pv1"},
              "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "n", "name": "p", "uid": "u"},
              "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local", "volumeMode": "Filesystem",
              "mountOptions": ["ro"], "nodeAffinity": {"required": {"nodeSelectorTerms": [
                  {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}},
              "csi": {"driver": "d", "volumeHandle": "h", "nodeStageSecretRef": {"name": "s", "namespace": "n"}},
              "rbd": {"monitors": ["a"], "image": "i"}},
     "status": {"phase": "Bound", "lastPhaseTransitionTime": "2024-01-01T00:00:00Z"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "b"},
     "binaryData": {"b": "AAE="}, "immutable": False},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "type": "Opaque",
     "data": {"a": "Yg=="}, "stringData": {"c": "d"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]},
     "status": {"phase": "Terminating", "conditions": [{"type": "NamespaceDeletionContentFailure",
                                                         "status": "False", "reason": "r", "message": "m",
                                                         "lastTransitionTime": "2024-01-01T00:00:00Z"}]}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
     "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
     "status": {"capacity": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0"}}},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "n"},
     "secrets": [{"name": "t"}], "imagePullSecrets": [{"name": "r"}], "automountServiceAccountToken": False},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1", "namespace": "n"},
     "involvedObject": {"kind": "DataVolume", "namespace": "n", "name": "dv", "uid": "u",
                        "apiVersion": "cdi.kubevirt.io/v1beta1", "resourceVersion": "5"},
     "reason": "ImportSucceeded", "message": "ok", "type": "Normal", "count": 2,
     "source": {"component": "datavolume-controller"}, "firstTimestamp": "2024-01-01T00:00:00Z",
     "lastTimestamp": None, "eventTime": None, "reportingComponent": "", "reportingInstance": ""},
    {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e.2", "namespace": "n"},
     "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "c", "reportingInstance": "i",
     "action": "Bind", "reason": "Bound", "regarding": {"kind": "Pod", "name": "p"}, "note": "x", "type": "Normal",
     "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cdi-uploadproxy", "namespace": "cdi"},
     "spec": {"selector": {"a": "b"}, "ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
              "type": "ClusterIP", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ipFamilies": ["IPv4"],
              "sessionAffinity": "None"},
     "status": {"loadBalancer": {}}},
    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e", "namespace": "n"},
     "subsets": [{"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "p"}}],
                  "ports": [{"port": 8443, "name": "https"}]}]},
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
     "metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
     "provisioner": "kubevirt.io/hostpath-provisioner", "reclaimPolicy": "Delete",
     "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True, "parameters": {"a": "b"},
     "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
     "rules": [{"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes/source"], "verbs": ["create"]}],
     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "n"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
     "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "n"}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": "n"},
     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["c"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
     "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview", "metadata": {"namespace": "n"},
     "spec": {"uid": "1", "user": "u", "resourceAttributes": {"namespace": "n", "verb": "list", "resource": "pods",
                                                             "labelSelector": {"rawSelector": "a=b"}}},
     "status": {"allowed": False, "denied": True, "reason": "no", "evaluationError": ""}},
    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "n"},
     "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.000000Z",
              "leaseTransitions": 1}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": "widgets.example.com"},
     "spec": {"group": "example.com", "scope": "Namespaced",
              "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
              "versions": [{"name": "v1", "served": True, "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
                            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.r",
                                                                     "statusReplicasPath": ".status.r"}},
                            "additionalPrinterColumns": [{"name": "Age", "type": "date",
                                                          "jsonPath": ".metadata.creationTimestamp"}]}]},
     "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}, "storedVersions": ["v1"],
                "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
     "spec": {"resourceAttributes": {"namespace": "n", "verb": "create", "group": "cdi.kubevirt.io",
                                     "resource": "datavolumes", "subresource": "source"}},
     "status": {"allowed": True}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
     "spec": {"user": "u", "groups": ["g"], "extra": {"k": ["v"]}, "nonResourceAttributes": {"path": "/x",
                                                                                              "verb": "get"}}},
    {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "n"},
     "status": {"resourceRules": [{"verbs": ["get"], "resources": ["pods"]}], "nonResourceRules": [],
                "incomplete": False}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "t"},
     "status": {"authenticated": True, "user": {"username": "u", "groups": ["g"]}}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
     "status": {"userInfo": {"username": "u", "extra": {"a": ["b"]}}}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
     "spec": {"audiences": ["a"], "expirationSeconds": 3600, "boundObjectRef": {"kind": "Pod", "name": "p"}},
     "status": {"token": "t", "expirationTimestamp": "2024-01-01T00:00:00Z"}},
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['apiVersion']}-{o['kind']}")
def test_realistic_objects_keep_every_field(obj: Obj) -> None:
    kept = copy.deepcopy(obj)
    assert unknown_fields(kept, *split_api_version(obj["apiVersion"]), obj["kind"]) == []
    assert kept == obj


def test_every_builtin_kind_has_a_realistic_object() -> None:
    covered = {(*split_api_version(o["apiVersion"]), o["kind"]) for o in OBJECTS}
    missing = set(builtin_kinds()) - covered
    assert missing == set()


SEEDS = [d for d in seed_documents()
         if d.obj and builtin_schema(*split_api_version(d.obj["apiVersion"]), d.obj["kind"]) is not None]


def test_seeds_have_builtin_manifests() -> None:
    kinds = {d.obj["kind"] for d in SEEDS if d.obj}
    assert {"PersistentVolumeClaim", "PersistentVolume", "StorageClass", "ConfigMap", "Pod"} <= kinds


@pytest.mark.parametrize("doc", SEEDS, ids=lambda d: d.id)
def test_seed_manifests_keep_every_field(doc: Any) -> None:
    obj = copy.deepcopy(doc.obj)
    assert unknown_fields(obj, *split_api_version(obj["apiVersion"]), obj["kind"]) == [], doc.text
    assert obj == doc.obj


@pytest.mark.parametrize("obj, expected", [
    ({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p", "lables": {"a": "b"}},
      "spec": {"acessModes": ["ReadWriteOnce"], "resources": {"requets": {"storage": "1Gi"}}}},
     ["metadata.lables", "spec.acessModes", "spec.resources.requets"]),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": [{"key": "a"}], "strngData": {}},
     ["data[0].key", "strngData"]),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controler": True}]}, "dta": {"a": "b"}},
     ["dta", "metadata.ownerReferences[0].controler"]),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
      "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolice": "Always",
                               "env": [{"name": "a", "valu": "b"}], "volumeMounts": [{"name": "v", "mountpath": "/"}]}],
               "volumes": [{"name": "v", "persistentVolumeClame": {"claimName": "x"}}], "restartpolicy": "Never"}},
     ["spec.containers[0].env[0].valu", "spec.containers[0].imagePullPolice",
      "spec.containers[0].volumeMounts[0].mountpath", "spec.restartpolicy", "spec.volumes[0].persistentVolumeClame"]),
    ({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
      "spec": {"hostpath": {"path": "/x"}, "local": {"path": "/x", "fstype": "ext4"}}},
     ["spec.hostpath", "spec.local.fstype"]),
    ({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"}, "provisioner": "p",
      "volumeBindingmode": "Immediate"}, ["volumeBindingmode"]),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
      "rules": [{"apiGroup": [""], "verbs": ["get"]}]}, ["rules[0].apiGroup"]),
    ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x"},
      "spec": {"versions": [{"name": "v1", "servd": True, "schema": {"openAPIV3Schema": {"anything": 1}}}]}},
     ["spec.versions[0].servd"]),
], ids=["pvc", "secret", "configmap-and-owner-ref", "pod", "pv", "storageclass", "role", "crd"])
def test_typos_are_unknown_fields(obj: Obj, expected: list[str]) -> None:
    assert unknown_fields(obj, *split_api_version(obj["apiVersion"]), obj["kind"]) == expected
