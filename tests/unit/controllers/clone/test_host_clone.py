"""The host-assisted clone's pure parts: when a clone cannot be done, the workers' pods, their progress metric,
and the VM controller's DataVolume manifests."""

from __future__ import annotations

import urllib.request
from typing import Any

from pycdi.controllers.clone import podspec
from pycdi.controllers.clone.hostclone import incompatibility, progress_from_metrics
from pycdi.controllers.importpod.podspec import PodOptions
from pycdi.controllers.vm import data_volume_for
from pycdi.controllers.vm.controller import service_account, wants_to_run
from pycdi.datapath.clone.progress import CloneProgress

Obj = dict[str, Any]


def claim(name: str, ns: str, *, mode: str = "Filesystem", size: str = "1Gi", content: str = "kubevirt",
          **annotations: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                         "annotations": {"cdi.kubevirt.io/storage.contentType": content, **annotations}},
            "spec": {"volumeMode": mode, "storageClassName": "local",
                     "resources": {"requests": {"storage": size}}}}


def test_modes_may_differ_only_for_kubevirt_content() -> None:
    assert incompatibility(claim("s", "a", mode="Block"), claim("t", "b", size="2Gi"), {"local": 0.06}) == ""
    assert incompatibility(claim("s", "a", content="archive"), claim("t", "b", mode="Block", content="archive"),
                           {}) == ("source volumeMode (Filesystem) and target volumeMode (Block) do not match, "
                                   "contentType (archive)")
    assert "do not match" in incompatibility(claim("s", "a"), claim("t", "b", content="archive"), {})


def test_usable_space_is_compared_after_the_filesystem_overhead() -> None:
    # A 1Gi Block source does not fit the image space a 1Gi Filesystem claim leaves after 6% overhead.
    assert incompatibility(claim("s", "a", mode="Block"), claim("t", "b"), {"local": 0.06}) == (
        "target resources requests storage size is smaller than the source")
    permissive = claim("t", "b", **{"cdi.kubevirt.io/permissiveClone": "true"})
    assert incompatibility(claim("s", "a", mode="Block"), permissive, {"local": 0.06}) == ""


def test_workers_pods() -> None:
    target = claim("copy", "dst", mode="Block", **{"cdi.kubevirt.io/storage.preallocation.requested": "true"})
    source = claim("disk", "src")
    options = PodOptions(image="img")
    pod = podspec.target_pod(target, None, options)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}
    assert pod["metadata"]["name"] == "cdi-clone-target-copy" and pod["metadata"]["ownerReferences"][0]["uid"] == \
        "uid-copy"
    assert env["DESTINATION"] == "/dev/cdi-block-volume" and env["VOLUME_MODE"] == "block"
    assert env["PREALLOCATION"] == "true"
    assert env["CLONER_SECRET"] == {"secretKeyRef": {"name": "cdi-clone-uid-copy", "key": "secret"}}
    assert pod["spec"]["containers"][0]["volumeDevices"] == [{"name": "cdi-data-vol",
                                                              "devicePath": "/dev/cdi-block-volume"}]
    src = podspec.source_pod(target, source, "10.0.0.7", None, options)
    env = {e["name"]: e.get("value") for e in src["spec"]["containers"][0]["env"]}
    assert src["metadata"]["name"] == "uid-copy-source-pod" and src["metadata"]["namespace"] == "src"
    assert "ownerReferences" not in src["metadata"]  # another namespace: found by its label instead
    assert src["metadata"]["labels"]["cdi.kubevirt.io/OwnedByUID"] == "uid-copy"
    assert env["UPLOAD_URL"] == "tcp://10.0.0.7:8443" and env["MOUNT_POINT"] == "/var/run/cdi/clone/source"
    assert src["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "disk", "readOnly": True}
    assert src["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] is True
    secret = podspec.clone_secret(target, "src", "v")
    assert secret["stringData"] == {"secret": "v"} and "ownerReferences" not in secret["metadata"]


def test_progress_is_read_for_its_owner() -> None:
    page = ('# TYPE kubevirt_cdi_clone_progress counter\n'
            'kubevirt_cdi_clone_progress_total{ownerUID="other"} 90.0\n'
            'kubevirt_cdi_clone_progress_total{ownerUID="me"} 42.5\n')
    assert progress_from_metrics(page, "me") == 42.5
    assert progress_from_metrics(page, "nobody") is None


def test_vm_data_volumes() -> None:
    vm = {"metadata": {"name": "vm", "namespace": "ns", "uid": "vm-uid"},
          "spec": {"runStrategy": "Always",
                   "template": {"spec": {"priorityClassName": "high", "volumes": [
                       {"name": "sa", "serviceAccount": {"serviceAccountName": "builder"}}]}},
                   "dataVolumeTemplates": [{"metadata": {"name": "disk", "labels": {"a": "b"}},
                                            "spec": {"source": {"pvc": {"name": "golden"}}, "storage": {}}}]}}
    dv = data_volume_for(vm, vm["spec"]["dataVolumeTemplates"][0])
    assert dv["metadata"]["name"] == "disk" and dv["metadata"]["namespace"] == "ns"
    assert dv["metadata"]["labels"] == {"a": "b", "kubevirt.io/created-by": "vm-uid"}
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/allowClaimAdoption"] == "true"
    assert dv["metadata"]["ownerReferences"] == [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                                  "name": "vm", "uid": "vm-uid", "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert dv["spec"]["source"]["pvc"] == {"name": "golden", "namespace": "ns"}
    assert dv["spec"]["priorityClassName"] == "high"
    assert service_account(vm) == "builder" and wants_to_run(vm)
    vm["spec"]["template"]["spec"]["volumes"] = []
    assert service_account(vm) == "default"


def test_the_source_workers_metric_is_what_the_controller_scrapes() -> None:
    progress = CloneProgress("owner-1")
    port = progress.serve(0, "127.0.0.1")
    progress.set(42.5)
    progress.set(10.0)  # never goes back
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        page = response.read().decode()
    assert progress_from_metrics(page, "owner-1") == 42.5
