"""Built-in printers: object -> Table cells, as kube-apiserver 1.32 prints them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pycdi.cluster.apiserver.errors import APIError
from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.tables import parse_include_object, render_table

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)
CREATED = "2025-01-10T11:50:00Z"  # 10m before NOW


def info(plural: str, kind: str, group: str = "", version: str = "v1", namespaced: bool = True,
         **kw: Any) -> ResourceInfo:
    return ResourceInfo(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced, **kw)


PODS = info("pods", "Pod")


def row(resource: ResourceInfo, obj: dict[str, Any]) -> list[Any]:
    table = render_table(resource, [obj], now=NOW)
    cells: list[Any] = table["rows"][0]["cells"]
    return cells


def headers(resource: ResourceInfo) -> list[tuple[str, str, int]]:
    table = render_table(resource, [], now=NOW)
    return [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]


def pod(status: dict[str, Any], spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "creationTimestamp": CREATED, **meta},
            "spec": spec or {"containers": [{"name": "c", "image": "i"}]}, "status": status}


def test_table_envelope_and_partial_metadata() -> None:
    obj = pod({"phase": "Pending"}, labels={"app": "x"})
    table = render_table(PODS, [obj], now=NOW,
                         list_metadata={"resourceVersion": "42", "continue": "", "remainingItemCount": None})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": table["columnDefinitions"][0]["description"]}
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": obj["metadata"]}


def test_include_object_variants() -> None:
    obj = pod({"phase": "Running"})
    assert render_table(PODS, [obj], include_object="None", now=NOW)["rows"][0]["object"] is None
    assert render_table(PODS, [obj], include_object="Object", now=NOW)["rows"][0]["object"] == obj
    assert parse_include_object(None) == "Metadata"
    assert parse_include_object("Object") == "Object"
    with pytest.raises(APIError) as err:
        parse_include_object("Everything")
    assert err.value.code == 400 and "unrecognized includeObject value" in err.value.message


def test_pod_columns() -> None:
    assert headers(PODS) == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
        ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1)]


@pytest.mark.parametrize(("status", "spec", "extra", "ready", "reason", "restarts"), [
    ({"phase": "Pending"}, None, {}, "0/1", "Pending", "0"),
    ({"phase": "Pending", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0,
         "state": {"waiting": {"reason": "ContainerCreating"}}}]}, None, {}, "0/1", "ContainerCreating", "0"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]},
     None, {}, "1/1", "Running", "0"),
    ({"phase": "Succeeded", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
     None, {}, "0/1", "Completed", "0"),
    ({"phase": "Failed", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}, None, {}, "0/1", "Error", "0"),
    ({"phase": "Failed", "containerStatuses": [
        {"name": "c", "ready": False, "state": {"terminated": {"exitCode": 3}}}]},
     None, {}, "0/1", "ExitCode:3", "0"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 2, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-10T11:55:00Z"}}}]},
     None, {}, "1/1", "Running", "2 (5m ago)"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "state": {"running": {}}}]},
     None, {"deletionTimestamp": "2025-01-10T11:59:00Z"}, "1/1", "Terminating", "0"),
    ({"phase": "Succeeded"}, None, {"deletionTimestamp": "2025-01-10T11:59:00Z"}, "0/1", "Succeeded", "0"),
    ({"phase": "Pending", "initContainerStatuses": [
        {"name": "init", "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}]},
     {"initContainers": [{"name": "init"}], "containers": [{"name": "c"}]}, {}, "0/1", "Init:0/1", "0"),
    ({"phase": "Pending", "initContainerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"running": {}}}]},
     {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]}, {},
     "0/1", "Init:1/2", "0"),
    ({"phase": "Pending", "initContainerStatuses": [
        {"name": "a", "restartCount": 3, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
     {"initContainers": [{"name": "a"}], "containers": [{"name": "c"}]}, {}, "0/1", "Init:Error", "3"),
    ({"phase": "Pending", "initContainerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
     {"initContainers": [{"name": "a"}], "containers": [{"name": "c"}]}, {}, "0/1", "Init:CrashLoopBackOff",
     "0"),
    ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
      "initContainerStatuses": [{"name": "side", "ready": True, "started": True, "state": {"running": {}}}],
      "containerStatuses": [{"name": "c", "ready": True, "state": {"running": {}}}]},
     {"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "c"}]}, {},
     "2/2", "Running", "0"),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                          "reason": "SchedulingGated"}]}, None, {}, "0/1", "SchedulingGated",
     "0"),
    ({"phase": "Running", "reason": "NodeLost"}, None, {"deletionTimestamp": "2025-01-10T11:59:00Z"},
     "0/1", "Unknown", "0"),
])
def test_pod_status(status: dict[str, Any], spec: dict[str, Any] | None, extra: dict[str, Any], ready: str,
                    reason: str, restarts: str) -> None:
    cells = row(PODS, pod(status, spec, **extra))
    assert cells[:5] == ["p", ready, reason, restarts, "10m"]


def test_pod_wide_cells_and_conditions() -> None:
    obj = pod({"phase": "Succeeded", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.5"}],
               "conditions": [{"type": "gate", "status": "True"}]},
              {"containers": [{"name": "c"}], "nodeName": "node1",
               "readinessGates": [{"conditionType": "gate"}, {"conditionType": "other"}]})
    table = render_table(PODS, [obj], now=NOW)
    assert table["rows"][0]["cells"][5:] == ["10.0.0.5", "node1", "<none>", "1/2"]
    assert table["rows"][0]["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                               "message": "The pod has completed successfully."}]
    assert row(PODS, pod({"phase": "Pending"}))[5:] == ["<none>", "<none>", "<none>", "<none>"]
    assert "conditions" not in render_table(PODS, [pod({"phase": "Pending"})], now=NOW)["rows"][0]


PVCS = info("persistentvolumeclaims", "PersistentVolumeClaim")


def test_pvc_columns_and_cells() -> None:
    assert headers(PVCS) == [
        ("Name", "string", 0), ("Status", "string", 0), ("Volume", "string", 0), ("Capacity", "string", 0),
        ("Access Modes", "string", 0), ("StorageClass", "string", 0), ("VolumeAttributesClass", "string", 1),
        ("Age", "string", 0), ("VolumeMode", "string", 1)]
    bound = {"metadata": {"name": "disk", "creationTimestamp": CREATED},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local", "volumeName": "pv-1",
                      "volumeMode": "Filesystem", "resources": {"requests": {"storage": "1Gi"}}},
             "status": {"phase": "Bound", "capacity": {"storage": "1024Mi"},
                        "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod",
                                        "ReadOnlyMany"]}}
    assert row(PVCS, bound) == ["disk", "Bound", "pv-1", "1Gi", "RWO,ROX,RWX,RWOP", "local", "<unset>", "10m",
                                "Filesystem"]
    pending: dict[str, Any] = {"metadata": {"name": "p2", "creationTimestamp": CREATED,
                            "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                        "volumeAttributesClassName": "gold"},
               "status": {"phase": "Pending", "capacity": {"storage": "5Gi"}}}
    assert row(PVCS, pending) == ["p2", "Pending", "", "", "", "beta", "gold", "10m", "<unset>"]
    pending["metadata"]["deletionTimestamp"] = "2025-01-10T11:59:00Z"
    assert row(PVCS, pending)[1] == "Terminating"


PVS = info("persistentvolumes", "PersistentVolume", namespaced=False)


def test_pv_columns_and_cells() -> None:
    assert [h[0] for h in headers(PVS) if h[2] == 0] == [
        "Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
        "VolumeAttributesClass", "Reason", "Age"]
    assert headers(PVS)[-1] == ("VolumeMode", "string", 1)
    pv = {"metadata": {"name": "pv-1", "creationTimestamp": "2025-01-05T12:00:00Z"},
          "spec": {"capacity": {"storage": "0.5Gi"}, "accessModes": ["ReadWriteOnce"],
                   "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local",
                   "claimRef": {"namespace": "default", "name": "disk"}, "volumeMode": "Block"},
          "status": {"phase": "Bound"}}
    assert row(PVS, pv) == ["pv-1", "512Mi", "RWO", "Delete", "Bound", "default/disk", "local", "<unset>", "",
                            "5d", "Block"]


SCS = info("storageclasses", "StorageClass", group="storage.k8s.io", namespaced=False)


def test_storageclass() -> None:
    assert [h[0] for h in headers(SCS)] == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                            "AllowVolumeExpansion", "Age"]
    sc: dict[str, Any] = {"metadata": {"name": "local", "creationTimestamp": CREATED,
                       "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "kubevirt.io/hostpath-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}
    assert row(SCS, sc) == ["local (default)", "kubevirt.io/hostpath-provisioner", "Delete",
                            "WaitForFirstConsumer", False, "10m"]
    sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "false"}
    sc.update(reclaimPolicy="Retain", allowVolumeExpansion=True)
    assert row(SCS, sc)[:5] == ["local", "kubevirt.io/hostpath-provisioner", "Retain",
                                "WaitForFirstConsumer", True]


def test_namespace_configmap_secret_serviceaccount_lease() -> None:
    m = {"name": "x", "creationTimestamp": CREATED}
    assert row(info("namespaces", "Namespace", namespaced=False),
               {"metadata": m, "status": {"phase": "Active"}}) == ["x", "Active", "10m"]
    assert row(info("configmaps", "ConfigMap"),
               {"metadata": m, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}}) == ["x", 3, "10m"]
    assert row(info("secrets", "Secret"),
               {"metadata": m, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}) == \
        ["x", "kubernetes.io/tls", 2, "10m"]
    assert row(info("secrets", "Secret"), {"metadata": m}) == ["x", "Opaque", 0, "10m"]
    assert row(info("serviceaccounts", "ServiceAccount"),
               {"metadata": m, "secrets": [{"name": "t"}]}) == ["x", 1, "10m"]
    lease = info("leases", "Lease", group="coordination.k8s.io")
    assert row(lease, {"metadata": m, "spec": {"holderIdentity": "me"}}) == ["x", "me", "10m"]
    assert row(lease, {"metadata": m, "spec": {}}) == ["x", "", "10m"]


def test_node() -> None:
    nodes = info("nodes", "Node", namespaced=False)
    assert [h[0] for h in headers(nodes)] == [
        "Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
        "Kernel-Version", "Container-Runtime"]
    node = {"metadata": {"name": "n1", "creationTimestamp": "2025-01-08T09:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian",
                                    "kernelVersion": "6.1", "containerRuntimeVersion": ""}}}
    assert row(nodes, node) == ["n1", "Ready,SchedulingDisabled", "control-plane,worker", "2d3h", "v1.32.0",
                                "192.168.1.2", "<none>", "Debian", "6.1", "<unknown>"]
    assert row(nodes, {"metadata": {"name": "n2"}})[:4] == ["n2", "Unknown", "<none>", "<unknown>"]


def test_event() -> None:
    events = info("events", "Event")
    assert [(h[0], h[2]) for h in headers(events)] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1), ("Source", 1),
        ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]
    ev = {"metadata": {"name": "dv.17a", "namespace": "default"},
          "involvedObject": {"kind": "DataVolume", "name": "dv", "fieldPath": ""},
          "type": "Normal", "reason": "ImportSucceeded", "message": " Import Successful \n",
          "source": {"component": "datavolume-controller"},
          "firstTimestamp": "2025-01-10T11:00:00Z", "lastTimestamp": "2025-01-10T11:58:00Z", "count": 3}
    assert row(events, ev) == ["2m", "Normal", "ImportSucceeded", "datavolume/dv", "",
                               "datavolume-controller", "Import Successful", "60m", 3, "dv.17a"]
    new_style = {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Pod"}, "type": "Warning",
                 "reason": "Failed", "message": "m", "eventTime": "2025-01-10T11:59:30.123456Z",
                 "reportingComponent": "ctrl", "reportingInstance": "host-1"}
    # 29.88s truncates to 29s, as Go converts the duration to whole seconds.
    assert row(events, new_style) == ["29s", "Warning", "Failed", "pod", "", "ctrl, host-1", "m", "29s", 1,
                                      "e2"]


def test_service_and_endpoints() -> None:
    services = info("services", "Service")
    svc = {"metadata": {"name": "s", "creationTimestamp": CREATED},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                              {"port": 53, "protocol": "UDP"}],
                    "selector": {"b": "2", "a": "1"}}}
    assert row(services, svc) == ["s", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "10m",
                                  "a=1,b=2"]
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"]},
          "status": {}}
    assert row(services, lb)[2:5] == ["10.96.0.11", "<pending>", "<none>"]
    endpoints = info("endpoints", "Endpoints")
    ep = {"metadata": {"name": "s", "creationTimestamp": CREATED},
          "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 8080}]}]}
    assert row(endpoints, ep) == ["s", "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...", "10m"]
    assert row(endpoints, {"metadata": {"name": "e"}})[1] == "<none>"


def test_rbac() -> None:
    rb = info("rolebindings", "RoleBinding", group="rbac.authorization.k8s.io")
    binding = {"metadata": {"name": "b", "creationTimestamp": CREATED},
               "roleRef": {"kind": "ClusterRole", "name": "edit", "apiGroup": "rbac.authorization.k8s.io"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                            {"kind": "Group", "name": "devs"},
                            {"kind": "ServiceAccount", "name": "sa", "namespace": "cdi"}]}
    assert row(rb, binding) == ["b", "ClusterRole/edit", "10m", "alice, bob", "devs", "cdi/sa"]
    crb = info("clusterrolebindings", "ClusterRoleBinding", group="rbac.authorization.k8s.io",
               namespaced=False)
    assert [(h[0], h[2]) for h in headers(crb)] == [("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1),
                                                    ("Groups", 1), ("ServiceAccounts", 1)]
    # Roles have no printer in kube: the default convertor prints NAME and CREATED AT (a date column).
    roles = info("roles", "Role", group="rbac.authorization.k8s.io")
    assert headers(roles) == [("Name", "string", 0), ("Created At", "date", 0)]
    assert row(roles, {"metadata": {"name": "r", "creationTimestamp": "2025-01-10T13:50:00+02:00"}}) == \
        ["r", "2025-01-10T11:50:00Z"]


def test_builtins_without_printer_use_default() -> None:
    crds = info("customresourcedefinitions", "CustomResourceDefinition", group="apiextensions.k8s.io",
                namespaced=False)
    assert headers(crds) == [("Name", "string", 0), ("Created At", "date", 0)]
    assert row(crds, {"metadata": {"name": "datavolumes.cdi.kubevirt.io", "creationTimestamp": CREATED}}) == \
        ["datavolumes.cdi.kubevirt.io", CREATED]
    assert row(crds, {"metadata": {"name": "x"}}) == ["x", "0001-01-01T00:00:00Z"]
