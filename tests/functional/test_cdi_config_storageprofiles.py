"""CDIConfig and StorageProfiles as the CDI controllers keep them, seen through the real kubectl."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import Cluster

EMPTY_SPEC = json.dumps([{"op": "replace", "path": "/spec", "value": {}}])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def storage_class(cluster: Cluster, name: str, provisioner: str, annotations: dict[str, str] | None = None,
                  parameters: dict[str, str] | None = None) -> None:
    body: dict[str, Any] = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                            "metadata": {"name": name, "annotations": annotations or {}},
                            "provisioner": provisioner}
    if parameters:
        body["parameters"] = parameters
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))


def wait_profile(cluster: Cluster, name: str, jsonpath: str, value: str) -> dict[str, Any]:
    cluster.kubectl("wait", "--for=create", f"storageprofile/{name}", "--timeout=60s")
    cluster.kubectl("wait", f"--for=jsonpath={{{jsonpath}}}={value}", f"storageprofile/{name}", "--timeout=60s")
    profile: dict[str, Any] = cluster.kubectl_json("get", "storageprofile", name)
    return profile


def wait_config(cluster: Cluster, jsonpath: str, value: str) -> dict[str, Any]:
    cluster.kubectl("wait", f"--for=jsonpath={{{jsonpath}}}={value}", "cdiconfig/config", "--timeout=60s")
    config: dict[str, Any] = cluster.kubectl_json("get", "cdiconfig", "config")
    return config


@pytest.fixture
def clean_config(cluster: Cluster) -> Iterator[None]:
    """Tests that change CDIConfig's spec put it back, so that the others see the defaults."""
    yield
    cluster.kubectl("patch", "cdiconfig", "config", "--type=json", "-p", EMPTY_SPEC)
    wait_config(cluster, ".status.preallocation", "false")


def test_readyz_lists_the_controllers(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "[+]cdi-controllers ok" in out


def test_fresh_cluster_has_cdiconfig_with_upstream_defaults(cluster: Cluster) -> None:
    # readyz waited for the controllers' first reconciles: no wait needed for the object itself.
    config = cluster.kubectl_json("get", "cdiconfig", "config")
    assert config["metadata"]["labels"]["app"] == "containerized-data-importer"
    status = config["status"]
    assert status["preallocation"] is False
    assert status["scratchSpaceStorageClass"] == ""
    assert status["defaultPodResourceRequirements"] == {
        "limits": {"cpu": "750m", "memory": "600M"}, "requests": {"cpu": "100m", "memory": "60M"}}
    assert status["filesystemOverhead"]["global"] == "0.06"
    assert status["filesystemOverhead"]["storageClass"]["local"] == "0.06"
    assert status["importProxy"] == {"HTTPProxy": "", "HTTPSProxy": "", "noProxy": "", "trustedCAProxy": ""}
    # The test harness runs `pycdi up --upload-proxy-port 0`: the port picked is the one reported.
    assert status["uploadProxyURL"].startswith("https://127.0.0.1:")
    cols = cluster.kubectl("get", "cdiconfig").stdout
    assert "config" in cols


def test_fresh_cluster_has_the_local_profile(cluster: Cluster) -> None:
    profile = cluster.kubectl_json("get", "storageprofile", "local")
    status = profile["status"]
    assert status["storageClass"] == "local"
    assert status["provisioner"] == "kubevirt.io/hostpath-provisioner"
    # The embedded provisioner does Block too: the bootstrap's profile spec says so, and the status follows it.
    both = [{"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
            {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block"}]
    assert profile["spec"]["claimPropertySets"] == both
    assert status["claimPropertySets"] == both
    assert status["dataImportCronSourceFormat"] == "pvc"
    recognized = [c for c in status["conditions"] if c["type"] == "Recognized"]
    assert recognized and recognized[0]["status"] == "True" and recognized[0]["reason"] == "RecognizedProvisioner"
    # The class declares the embedded provisioner's own clones (annotation `cdi.kubevirt.io/clone-strategy`), and
    # its snapshot class is the one whose driver is the class's provisioner.
    assert status["cloneStrategy"] == "csi-clone"
    assert status["snapshotClass"] == "local-snapshots"


def test_new_class_gets_a_profile_and_an_overhead_and_loses_them_on_delete(cluster: Cluster,
                                                                          clean_config: None) -> None:
    name = unique("ceph")
    storage_class(cluster, name, "rook-ceph.rbd.csi.ceph.com")
    profile = wait_profile(cluster, name, ".status.provisioner", "rook-ceph.rbd.csi.ceph.com")
    status = profile["status"]
    assert status["storageClass"] == name
    assert status["claimPropertySets"] == [
        {"accessModes": ["ReadWriteMany"], "volumeMode": "Block"},
        {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block"},
        {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
    ]
    assert status["cloneStrategy"] == "csi-clone"  # from the capabilities table
    # The table advises snapshot sources for this provisioner, but there is no snapshot class: pvc.
    assert status["dataImportCronSourceFormat"] == "pvc"
    wait_config(cluster, f".status.filesystemOverhead.storageClass.{name}", "0.06")

    cluster.kubectl("delete", "storageclass", name)
    cluster.kubectl("wait", "--for=delete", f"storageprofile/{name}", "--timeout=60s")
    # The profile went once the shared StorageClass cache lost the class; a reconcile of the config
    # started after that (triggered by a spec change) no longer lists it.
    cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p", json.dumps({"spec": {"preallocation": True}}))
    config = wait_config(cluster, ".status.preallocation", "true")
    assert name not in config["status"]["filesystemOverhead"]["storageClass"]


def test_both_hostpath_provisioner_names_are_known(cluster: Cluster) -> None:
    for provisioner in ("kubevirt.io/hostpath-provisioner", "kubevirt.io.hostpath-provisioner"):
        name = unique("hpp")
        storage_class(cluster, name, provisioner)
        profile = wait_profile(cluster, name, ".status.claimPropertySets[0].volumeMode", "Filesystem")
        assert profile["status"]["claimPropertySets"] == [{"accessModes": ["ReadWriteOnce"],
                                                          "volumeMode": "Filesystem"}]
        cluster.kubectl("delete", "storageclass", name)


def test_unknown_provisioner_is_not_recognized(cluster: Cluster) -> None:
    name = unique("odd")
    storage_class(cluster, name, "example.com/unknown")
    profile = wait_profile(cluster, name, ".status.conditions[0].reason", "UnrecognizedProvisioner")
    assert profile["status"]["claimPropertySets"] == [] or "claimPropertySets" not in profile["status"]
    assert profile["status"]["conditions"][0]["status"] == "False"
    assert profile["status"]["cloneStrategy"] == "copy"
    cluster.kubectl("delete", "storageclass", name)


def test_profile_spec_overrides_show_in_status(cluster: Cluster) -> None:
    name = unique("over")
    storage_class(cluster, name, "kubevirt.io/hostpath-provisioner")
    wait_profile(cluster, name, ".status.storageClass", name)
    spec = {"claimPropertySets": [{"accessModes": ["ReadWriteMany"], "volumeMode": "Block"}],
            "cloneStrategy": "csi-clone", "dataImportCronSourceFormat": "snapshot"}
    cluster.kubectl("patch", "storageprofile", name, "--type=merge", "-p", json.dumps({"spec": spec}))
    profile = wait_profile(cluster, name, ".status.cloneStrategy", "csi-clone")
    assert profile["status"]["claimPropertySets"] == spec["claimPropertySets"]
    assert profile["status"]["dataImportCronSourceFormat"] == "snapshot"
    # Dropping the override brings the computed values back (snapshot: `local-snapshots` is of this driver).
    cluster.kubectl("patch", "storageprofile", name, "--type=json", "-p", EMPTY_SPEC)
    profile = wait_profile(cluster, name, ".status.cloneStrategy", "snapshot")
    assert profile["status"]["claimPropertySets"] == [{"accessModes": ["ReadWriteOnce"],
                                                      "volumeMode": "Filesystem"}]
    cluster.kubectl("delete", "storageclass", name)


def test_clone_strategy_annotation_on_the_class(cluster: Cluster) -> None:
    name = unique("ann")
    storage_class(cluster, name, "example.com/unknown", annotations={"cdi.kubevirt.io/clone-strategy": "csi-clone"})
    wait_profile(cluster, name, ".status.cloneStrategy", "csi-clone")
    cluster.kubectl("delete", "storageclass", name)


def test_snapshot_class_for_the_provisioner_makes_snapshot_clones(cluster: Cluster) -> None:
    driver = f"{unique('snap')}.csi.example.com"
    name = unique("snapsc")
    storage_class(cluster, name, driver)
    profile = wait_profile(cluster, name, ".status.cloneStrategy", "copy")
    assert "snapshotClass" not in profile["status"]

    vsc = unique("vsc")
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
        "metadata": {"name": vsc}, "driver": driver, "deletionPolicy": "Delete"}))
    profile = wait_profile(cluster, name, ".status.cloneStrategy", "snapshot")
    assert profile["status"]["snapshotClass"] == vsc

    # A second class of the same driver marked default wins over the first by name.
    default_vsc = f"z{vsc}"
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
        "metadata": {"name": default_vsc,
                     "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
        "driver": driver, "deletionPolicy": "Delete"}))
    wait_profile(cluster, name, ".status.snapshotClass", default_vsc)

    cluster.kubectl("delete", "volumesnapshotclass", vsc, default_vsc)
    profile = wait_profile(cluster, name, ".status.cloneStrategy", "copy")
    assert "snapshotClass" not in profile["status"]
    cluster.kubectl("delete", "storageclass", name)


def test_cdiconfig_spec_overrides_show_in_status(cluster: Cluster, clean_config: None) -> None:
    scratch = unique("scratch")
    storage_class(cluster, scratch, "kubevirt.io/hostpath-provisioner")
    spec = {
        "scratchSpaceStorageClass": scratch,
        "preallocation": True,
        "uploadProxyURLOverride": "upload.example.com",
        "filesystemOverhead": {"global": "0.1", "storageClass": {"local": "0.2"}},
        "podResourceRequirements": {"limits": {"cpu": "2"}, "requests": {"memory": "1Gi"}},
        "importProxy": {"HTTPProxy": "http://proxy:3128", "HTTPSProxy": "", "noProxy": "localhost",
                        "trustedCAProxy": ""},
    }
    cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p", json.dumps({"spec": spec}))
    config = wait_config(cluster, ".status.scratchSpaceStorageClass", scratch)
    status = config["status"]
    assert status["preallocation"] is True
    assert status["uploadProxyURL"] == "upload.example.com"
    assert status["filesystemOverhead"]["global"] == "0.1"
    assert status["filesystemOverhead"]["storageClass"]["local"] == "0.2"
    assert status["filesystemOverhead"]["storageClass"][scratch] == "0.1"
    assert status["defaultPodResourceRequirements"] == {
        "limits": {"cpu": "2", "memory": "600M"}, "requests": {"cpu": "100m", "memory": "1Gi"}}
    assert status["importProxy"] == spec["importProxy"]

    # A scratch class that does not exist is not reported: the scratch PVC then uses the target's class.
    cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p",
                    json.dumps({"spec": {"scratchSpaceStorageClass": unique("missing"), "preallocation": False}}))
    # Both fields come from one reconcile: wait on the one kubectl can wait for (not an empty string).
    config = wait_config(cluster, ".status.preallocation", "false")
    assert config["status"]["scratchSpaceStorageClass"] == ""
    cluster.kubectl("delete", "storageclass", scratch)


def test_deleted_cdiconfig_comes_back(cluster: Cluster) -> None:
    cluster.kubectl("delete", "cdiconfig", "config")
    cluster.kubectl("wait", "--for=create", "cdiconfig/config", "--timeout=60s")
    wait_config(cluster, ".status.filesystemOverhead.global", "0.06")
