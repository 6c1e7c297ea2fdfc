"""The official Python `kubernetes` client against `pycdi up`: CRUD, patches, conflicts, watches, dynamic discovery."""
# The client's models type every field Optional and its watch/dynamic modules are untyped.
# mypy: disable-error-code="union-attr,index,no-untyped-call,arg-type,attr-defined,no-any-return,operator"

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster

DV_GROUP, DV_VERSION, DV_PLURAL = "cdi.kubevirt.io", "v1beta1", "datavolumes"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    name = unique("kp")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException:
        pass


def dv_body(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{DV_GROUP}/{DV_VERSION}", "kind": "DataVolume", "metadata": {"name": name},
            # A sourceRef to no DataSource: no controller writes its status, so the test's own writes are all there is.
            "spec": {"sourceRef": {"kind": "DataSource", "name": "not-there"},
                     "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}


def test_load_kube_config(cluster: Cluster) -> None:
    # the global form most scripts use
    config.load_kube_config(config_file=str(cluster.kubeconfig))
    version = client.VersionApi().get_code()
    assert version.major == "1"
    names = [n.metadata.name for n in client.CoreV1Api().list_namespace().items]
    assert {"default", "kube-system"} <= set(names)


def test_configmap_crud(core: client.CoreV1Api, ns: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"app": "t"}), data={"a": "1"})
    created = core.create_namespaced_config_map(ns, body)
    assert created.metadata.uid and created.metadata.resource_version
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, body)
    assert exc.value.status == 409 and '"reason":"AlreadyExists"' in exc.value.body.replace(" ", "")
    read = core.read_namespaced_config_map("cfg", ns)
    assert read.data == {"a": "1"} and read.metadata.uid == created.metadata.uid
    listed = core.list_namespaced_config_map(ns, label_selector="app=t")
    assert [c.metadata.name for c in listed.items] == ["cfg"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"b": "2"}})  # strategic merge
    assert patched.data == {"a": "1", "b": "2"}
    # replace with the current resourceVersion works, with a stale one gives 409 Conflict
    patched.data["c"] = "3"
    replaced = core.replace_namespaced_config_map("cfg", ns, patched)
    assert replaced.data == {"a": "1", "b": "2", "c": "3"}
    stale = read
    stale.data = {"lost": "update"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("cfg", ns, stale)
    assert exc.value.status == 409
    assert 'Operation cannot be fulfilled on configmaps \\"cfg\\": the object has been modified' in exc.value.body
    core.delete_namespaced_config_map("cfg", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("cfg", ns)
    assert exc.value.status == 404


def test_namespace_lifecycle(core: client.CoreV1Api) -> None:
    name = unique("kpns")
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == name
    patched = core.patch_namespace(name, {"metadata": {"labels": {"team": "storage"}}})
    assert patched.metadata.labels["team"] == "storage"
    w = watch.Watch()
    core.delete_namespace(name)
    # the namespace goes Terminating and then disappears once emptied; watch from before the delete
    phases: list[tuple[str, str]] = []
    for event in w.stream(core.list_namespace, field_selector=f"metadata.name={name}", timeout_seconds=60,
                          resource_version=patched.metadata.resource_version):
        phases.append((event["type"], event["object"].status.phase))
        if event["type"] == "DELETED":
            w.stop()
    assert phases[0] == ("MODIFIED", "Terminating")
    assert phases[-1][0] == "DELETED"
    with pytest.raises(ApiException) as exc:
        core.read_namespace(name)
    assert exc.value.status == 404


def test_custom_objects(api: client.ApiClient, ns: str) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, dv_body("disk"))
    assert created["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk")
    assert got["spec"]["sourceRef"] == {"kind": "DataSource", "name": "not-there"}
    listed = custom.list_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL)
    assert listed["kind"] == "DataVolumeList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["disk"]
    # the client sends merge-patch+json for custom objects
    patched = custom.patch_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk",
                                                    {"metadata": {"labels": {"a": "b"}}})
    assert patched["metadata"]["labels"] == {"a": "b"}
    assert patched["metadata"]["generation"] == 1
    # a DataVolume's spec is immutable (CDI's validating webhook): the client gets the webhook's 422
    with pytest.raises(ApiException) as refused:
        custom.patch_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk",
                                              {"spec": {"preallocation": True}})
    assert refused.value.status == 422 and "Cannot update DataVolume Spec" in str(refused.value.body)
    status = custom.patch_namespaced_custom_object_status(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk",
                                                          {"status": {"phase": "Pending"}})
    assert status["status"]["phase"] == "Pending" and status["metadata"]["generation"] == 1
    everywhere = custom.list_cluster_custom_object(DV_GROUP, DV_VERSION, DV_PLURAL, label_selector="a=b")
    assert (ns, "disk") in [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]]
    custom.delete_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk")
    with pytest.raises(ApiException) as exc:
        custom.get_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "disk")
    assert exc.value.status == 404


def test_watch_configmaps(core: client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str, str]] = []
    w = watch.Watch()
    ready = threading.Event()

    def changes() -> None:
        ready.wait(30)
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"),
                                                                 data={"v": "1"}))
        core.patch_namespaced_config_map("w", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("w", ns)

    writer = threading.Thread(target=changes)
    writer.start()
    try:
        ready.set()
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=start,
                              field_selector="metadata.name=w", timeout_seconds=60):
            obj = event["object"]
            seen.append((event["type"], obj.metadata.name, (obj.data or {}).get("v", "")))
            if event["type"] == "DELETED":
                w.stop()
    finally:
        writer.join(60)
    assert seen == [("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]


def test_watch_custom_objects(api: client.ApiClient, ns: str) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, dv_body("wdv"))
    w = watch.Watch()
    types: list[str] = []
    for event in w.stream(custom.list_namespaced_custom_object, DV_GROUP, DV_VERSION, ns, DV_PLURAL,
                          timeout_seconds=60):
        types.append(event["type"])
        if event["type"] == "ADDED":  # the synthetic ADDED of the current state: now change it
            custom.patch_namespaced_custom_object_status(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "wdv",
                                                         {"status": {"phase": "Succeeded"}})
        elif event["type"] == "MODIFIED":
            assert event["object"]["status"]["phase"] == "Succeeded"
            custom.delete_namespaced_custom_object(DV_GROUP, DV_VERSION, ns, DV_PLURAL, "wdv")
        elif event["type"] == "DELETED":
            w.stop()
    assert types == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_times_out(core: client.CoreV1Api, ns: str) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv,
                                       field_selector="metadata.name=never", timeout_seconds=1))
    assert events == []


def test_dynamic_client_discovers_datavolumes(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    resource = dyn.resources.get(api_version=f"{DV_GROUP}/{DV_VERSION}", kind="DataVolume")
    assert resource.name == "datavolumes" and resource.namespaced
    assert "dv" in resource.short_names
    created = resource.create(body=dv_body("dyn"), namespace=ns)
    assert created.metadata.name == "dyn"
    listed = resource.get(namespace=ns)
    assert [i.metadata.name for i in listed.items] == ["dyn"]
    patched = resource.patch(body={"metadata": {"labels": {"x": "y"}}}, name="dyn", namespace=ns,
                             content_type="application/merge-patch+json")
    assert patched.metadata.labels.x == "y"
    status = dyn.resources.get(api_version=f"{DV_GROUP}/{DV_VERSION}", kind="DataVolume").status
    assert status is not None
    pvcs = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    assert pvcs.name == "persistentvolumeclaims" and "pvc" in pvcs.short_names
    resource.delete(name="dyn", namespace=ns)
    assert resource.get(namespace=ns).items == []
