"""VirtualMachines with `dataVolumeTemplates` against a real `pycdi up`: the seed's `vm-dv-clone` cloning
`my-favorite-vm-disk` into `favorite-clone` (refused until the seed's RBAC lets the VM's ServiceAccount clone),
the DataVolumes' lifecycle following the VM's (deleted with it, kept by an orphaning delete), and the VM's status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clones import digest, image_path, image_size, source_with_data, wait_created, wait_dv
from tests.support.cluster import Cluster
from tests.support.storage import apply, get, seed_object, unique, wait_event, wait_until

SOURCE_NS, TARGET_NS = "source-namespace", "destination-namespace"
SOURCE = "my-favorite-vm-disk"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def source(cluster: Cluster) -> Iterator[tuple[str, int]]:
    for ns in (SOURCE_NS, TARGET_NS):
        cluster.kubectl("create", "namespace", ns)
    source_with_data(cluster, SOURCE_NS, SOURCE)
    path = image_path(cluster, SOURCE_NS, SOURCE)
    yield digest(path, image_size(path)), image_size(path)


def condition(vm: Obj, type_: str) -> Obj:
    return next(c for c in (vm.get("status") or {}).get("conditions") or [] if c["type"] == type_)


def vm_named(name: str, disk: str, *, running: bool = False) -> Obj:
    """The seed's VM under another name, its template under another disk name."""
    vm = seed_object("VirtualMachine", "vm-dv-clone")
    vm["metadata"]["name"] = name
    vm["spec"]["running"] = running
    vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] = disk
    vm["spec"]["template"]["spec"]["volumes"][0]["dataVolume"]["name"] = disk
    return vm


def test_seed_vm_clones_its_disk_once_its_service_account_may(cluster: Cluster, source: tuple[str, int]) -> None:
    vm = seed_object("VirtualMachine", "vm-dv-clone")
    assert vm["spec"]["dataVolumeTemplates"][0]["spec"]["source"]["pvc"] == {"namespace": SOURCE_NS, "name": SOURCE}
    apply(cluster, vm, namespace=TARGET_NS)
    event = wait_event(cluster, TARGET_NS, "vm-dv-clone", "UnauthorizedDataVolumeCreate")
    assert event["message"] == (
        "Not authorized to create DataVolume favorite-clone: User system:serviceaccount:destination-namespace:default "
        "has insufficient permissions in clone source namespace source-namespace")
    stuck = wait_until(cluster, "vm", "vm-dv-clone", TARGET_NS,
                       lambda v: (v.get("status") or {}).get("printableStatus") == "Provisioning")
    assert condition(stuck, "DataVolumesReady")["status"] == "False"
    assert condition(stuck, "Failure")["reason"] == "UnauthorizedDataVolumeCreate"
    assert cluster.kubectl("get", "dv", "favorite-clone", "-n", TARGET_NS, check=False).returncode != 0
    # The seed's RBAC, verbatim: the destination's `default` ServiceAccount may clone from the source namespace.
    apply(cluster, seed_object("ClusterRole", "datavolume-cloner"))
    apply(cluster, seed_object("RoleBinding", "allow-clone-to-user"))
    wait_dv(cluster, TARGET_NS, "favorite-clone")
    ready = wait_until(cluster, "vm", "vm-dv-clone", TARGET_NS,
                       lambda v: (v.get("status") or {}).get("printableStatus") == "Stopped")
    dvs_ready = condition(ready, "DataVolumesReady")
    assert (dvs_ready["status"], dvs_ready["reason"]) == ("True", "AllDVsReady")
    assert not [c for c in ready["status"]["conditions"] if c["type"] == "Failure"]
    dv = get(cluster, "dv", "favorite-clone", TARGET_NS)
    owner = dv["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("VirtualMachine", "vm-dv-clone", ready["metadata"]["uid"])
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    assert dv["metadata"]["labels"]["kubevirt.io/created-by"] == ready["metadata"]["uid"]
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"
    assert digest(image_path(cluster, TARGET_NS, "favorite-clone"), source[1]) == source[0]
    # Deleting the VM deletes its DataVolume, and the DataVolume its PVC.
    cluster.kubectl("delete", "vm", "vm-dv-clone", "-n", TARGET_NS, "--wait=true")
    cluster.kubectl("wait", "--for=delete", "dv/favorite-clone", "-n", TARGET_NS, "--timeout=60s")
    cluster.kubectl("wait", "--for=delete", "pvc/favorite-clone", "-n", TARGET_NS, "--timeout=60s")


def test_orphaning_delete_keeps_the_data_volumes(cluster: Cluster, source: tuple[str, int]) -> None:
    apply(cluster, seed_object("ClusterRole", "datavolume-cloner"))
    apply(cluster, seed_object("RoleBinding", "allow-clone-to-user"))
    name, disk = unique("vm"), unique("disk")
    apply(cluster, vm_named(name, disk), namespace=TARGET_NS)
    wait_dv(cluster, TARGET_NS, disk)
    cluster.kubectl("delete", "vm", name, "-n", TARGET_NS, "--cascade=orphan", "--wait=true")
    kept = wait_until(cluster, "dv", disk, TARGET_NS, lambda d: not d["metadata"].get("ownerReferences"))
    assert kept["status"]["phase"] == "Succeeded"
    assert get(cluster, "pvc", disk, TARGET_NS)["status"]["phase"] == "Bound"


def test_running_vm_is_accepted_and_says_it_does_not_run(cluster: Cluster, source: tuple[str, int]) -> None:
    name, disk = unique("vm"), unique("disk")
    vm = vm_named(name, disk, running=True)
    # Its disk from the same namespace: no cross-namespace permission needed.
    vm["spec"]["dataVolumeTemplates"][0]["spec"]["source"] = {"blank": {}}
    apply(cluster, vm, namespace=TARGET_NS)
    wait_dv(cluster, TARGET_NS, disk)
    done = wait_until(cluster, "vm", name, TARGET_NS,
                      lambda v: (v.get("status") or {}).get("printableStatus") == "Stopped")
    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RunningNotSupported")
    assert "does not run virtual machines" in ready["message"]
    assert done["status"]["ready"] is False and done["spec"]["running"] is True
    events = cluster.kubectl_json("get", "events", "-n", TARGET_NS, "--field-selector",
                                  f"involvedObject.name={name},reason=SuccessfulDataVolumeCreate")["items"]
    assert [e["message"] for e in events] == [f"Created DataVolume {disk}"]
    # A DataVolume of the VM deleted by hand comes back.
    uid = get(cluster, "dv", disk, TARGET_NS)["metadata"]["uid"]
    cluster.kubectl("delete", "dv", disk, "-n", TARGET_NS, "--wait=true")
    wait_created(cluster, "dv", TARGET_NS, disk)
    again = wait_until(cluster, "dv", disk, TARGET_NS, lambda d: d["metadata"]["uid"] != uid)
    assert json.dumps(again["metadata"]["ownerReferences"][0]["kind"]) == '"VirtualMachine"'
