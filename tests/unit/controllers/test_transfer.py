"""The ObjectTransfer controller: its pure rules, and whole PVC transfers driven step by step against a real embedded
API server with nothing else running (no binder, no provisioner): every write is the controller's, or the test's
standing in for kube's binder, so each state in between can be looked at."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pycdi.controllers.runtime import Informer, Request
from pycdi.controllers.transfer import OBJECT_TRANSFERS, TransferReconciler
from pycdi.controllers.transfer import state as st
from pycdi.controllers.transfer.controller import index_objects, index_pv
from pycdi.controllers.transfer.crashhook import CrashHook
from pycdi.kube.client import KubeClient
from pycdi.kube.errors import NotFound
from pycdi.kube.resources import NAMESPACES, PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, PODS

Obj = dict[str, Any]


def ot(name: str = "t", kind: str = "PersistentVolumeClaim", ns: str = "src", source: str = "disk",
       target: Obj | None = None, **status: Any) -> Obj:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "ObjectTransfer",
            "metadata": {"name": name, "uid": "ot-uid"},
            "spec": {"source": {"kind": kind, "namespace": ns, "name": source},
                     "target": {"namespace": "dst"} if target is None else target},
            "status": status}


# ---- pure rules ---------------------------------------------------------------------------------------------


def test_target_defaults_to_the_source_namespace_and_name() -> None:
    assert (st.target_namespace(ot()), st.target_name(ot())) == ("dst", "disk")
    renamed = ot(target={"name": "other"})
    assert (st.target_namespace(renamed), st.target_name(renamed)) == ("src", "other")


def test_condition_quirk_state_in_message_detail_in_reason() -> None:
    status: Obj = {}
    assert st.set_condition(status, "False", "Source in use by another transfer", "first")
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["message"], cond["reason"]) == (
        "Complete", "False", "Source in use by another transfer", "first")
    assert cond["lastTransitionTime"] == cond["lastHeartbeatTime"]
    assert not st.set_condition(status, "False", "Source in use by another transfer", "first")
    assert st.set_condition(status, "True", "Transfer complete")
    assert "reason" not in status["conditions"][0]  # omitempty


def test_target_object_is_the_saved_source_renamed_and_stripped() -> None:
    saved: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": "disk", "namespace": "src", "uid": "u", "resourceVersion": "9", "generation": 1,
                               "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{}],
                               "finalizers": ["kubernetes.io/pvc-protection"],
                               "ownerReferences": [{"kind": "DataVolume", "name": "disk", "uid": "dv"}],
                               "annotations": {"cdi.kubevirt.io/objectTransferName": "t", "keep": "me",
                                               "pv.kubernetes.io/bind-completed": "yes"}},
                  "spec": {"volumeName": "pv-1"}}
    moved = st.target_object(ot(data={"source": json.dumps(saved)}), drop_annotations=(st.ANN_BIND_COMPLETED,))
    assert moved["metadata"] == {"name": "disk", "namespace": "dst", "finalizers": ["kubernetes.io/pvc-protection"],
                                 "annotations": {"keep": "me"}}
    assert moved["spec"] == {"volumeName": "pv-1"}
    # Same namespace (a rename): owners stay, as upstream.
    same = ot(target={"name": "renamed"}, data={"source": json.dumps(saved)})
    assert st.target_object(same)["metadata"]["ownerReferences"] == saved["metadata"]["ownerReferences"]
    with pytest.raises(ValueError, match="source spec missing"):
        st.target_object(ot())


def test_required_annotations_match_exactly() -> None:
    transfer = ot()
    transfer["spec"]["source"]["requiredAnnotations"] = {"a": "1"}
    assert st.has_required_annotations(transfer, {"metadata": {"annotations": {"a": "1", "b": "2"}}})
    assert not st.has_required_annotations(transfer, {"metadata": {"annotations": {"a": "2"}}})
    assert not st.has_required_annotations(transfer, {"metadata": {}})


def test_finished_pods_do_not_use_a_claim() -> None:
    def pod(phase: str, claim: str) -> Obj:
        return {"spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]},
                "status": {"phase": phase}}
    pods = [pod("Succeeded", "disk"), pod("Failed", "disk"), pod("Running", "other"), pod("Pending", "disk")]
    assert st.pods_using(pods, "disk") == [pods[3]]


def test_indexes_name_source_target_and_pv() -> None:
    assert index_objects(ot()) == ["persistentvolumeclaim/src/disk", "persistentvolumeclaim/dst/disk"]
    assert index_objects(ot(kind="datavolume")) == ["datavolume/src/disk", "datavolume/dst/disk"]
    assert index_objects(ot(kind="Secret")) == []
    assert index_pv(ot(data={"pvName": "pv-1"})) == ["pv-1"]


def test_crash_hook_is_inert_unless_armed() -> None:
    hook = CrashHook()
    for _ in range(3):
        hook.wrote("x")
    assert (hook.armed, hook.writes) == (False, 3)


# ---- whole transfers against a real API server --------------------------------------------------------------


@pytest.fixture
async def env(client: KubeClient) -> AsyncIterator[tuple[KubeClient, TransferReconciler, str, str]]:
    src, dst = (f"ns-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for ns in (src, dst):
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    pods = Informer(client, PODS)
    pods.start()
    await pods.wait_synced()
    try:
        yield client, TransferReconciler(client, pods, CrashHook()), src, dst
    finally:
        await pods.stop()


async def bound_claim(client: KubeClient, ns: str, name: str, finalizers: list[str] | None = None,
                      claim_ref: Obj | None = None) -> tuple[Obj, Obj]:
    """A claim and its volume, bound as kube's binder leaves them."""
    pv_name = f"pv-{uuid.uuid4().hex[:8]}"
    claim = await client.create(PERSISTENT_VOLUME_CLAIMS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "finalizers": finalizers or [],
                     "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "manual", "volumeName": pv_name}})
    claim = await client.update_status(PERSISTENT_VOLUME_CLAIMS, {**claim, "status": {"phase": "Bound"}})
    ref = claim_ref or {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
                        "uid": claim["metadata"]["uid"]}
    pv = await client.create(PERSISTENT_VOLUMES, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "storageClassName": "manual",
                 "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": f"/tmp/{pv_name}"},
                 "claimRef": ref}})
    return claim, pv


async def create_transfer(client: KubeClient, src: str, dst: str, name: str = "") -> str:
    name = name or f"t-{uuid.uuid4().hex[:8]}"
    await client.create(OBJECT_TRANSFERS, {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "ObjectTransfer", "metadata": {"name": name},
        "spec": {"source": {"kind": "PersistentVolumeClaim", "namespace": src, "name": "disk"},
                 "target": {"namespace": dst}}})
    return name


async def drive(client: KubeClient, reconciler: TransferReconciler, name: str, until: str, steps: int = 30) -> Obj:
    """Reconcile until the condition says `until` (as the queue would, minus the waiting)."""
    for _ in range(steps):
        obj = await client.get(OBJECT_TRANSFERS, name)
        if st.condition_message(obj) == until:
            return obj
        await reconciler.reconcile(Request(name))
    obj = await client.get(OBJECT_TRANSFERS, name)
    raise AssertionError(f"never reached {until!r}: {obj.get('status')}")


async def test_cloning_protection_holds_then_the_whole_sequence(env: tuple[KubeClient, TransferReconciler, str, str]
                                                                ) -> None:
    client, reconciler, src, dst = env
    _, pv = await bound_claim(client, src, "disk", finalizers=[st.PVC_CLONE_FINALIZER])
    pv_name = pv["metadata"]["name"]
    name = await create_transfer(client, src, dst)
    held = await drive(client, reconciler, name, f"PVC has finalizer: {st.PVC_CLONE_FINALIZER}")
    assert held["status"]["phase"] == "Pending" and held["metadata"]["finalizers"] == ["cdi.kubevirt.io/objectTransfer"]
    # Removed by hand, as the seed describes.
    await client.patch(PERSISTENT_VOLUME_CLAIMS, "disk", [{"op": "remove", "path": "/metadata/finalizers/0"}], src,
                       patch_type="json")
    await reconciler.reconcile(Request(name))
    running = await client.get(OBJECT_TRANSFERS, name)
    assert running["status"]["phase"] == "Running"
    saved = json.loads(running["status"]["data"]["source"])
    assert saved["metadata"]["annotations"]["cdi.kubevirt.io/objectTransferName"] == name
    assert "status" not in saved and running["status"]["data"]["pvName"] == pv_name
    # Step by step: reclaim policy saved, then Retain, then the source goes, then the PV points at the target.
    await reconciler.reconcile(Request(name))
    assert (await client.get(OBJECT_TRANSFERS, name))["status"]["data"]["pvReclaim"] == "Delete"
    await reconciler.reconcile(Request(name))
    assert (await client.get(PERSISTENT_VOLUMES, pv_name))["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    waiting = await drive(client, reconciler, name, "Waiting for target to be bound")
    assert waiting["status"]["phase"] == "Running"
    assert await absent(client, src, "disk")
    pv = await client.get(PERSISTENT_VOLUMES, pv_name)
    assert pv["spec"]["claimRef"] == {"namespace": dst, "name": "disk"}  # no UID: only that claim may bind it
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"  # held until the target has it
    target = await client.get(PERSISTENT_VOLUME_CLAIMS, "disk", dst)
    assert target["spec"]["volumeName"] == pv_name
    assert "pv.kubernetes.io/bind-completed" not in target["metadata"]["annotations"]
    assert "cdi.kubevirt.io/objectTransferName" not in target["metadata"]["annotations"]
    # Kube's binder binds it (the test stands in for it here); the policy comes back, then Complete.
    await client.update_status(PERSISTENT_VOLUME_CLAIMS, {**target, "status": {"phase": "Bound"}})
    done = await drive(client, reconciler, name, "Transfer complete")
    assert done["status"]["phase"] == "Complete" and "data" not in done["status"]
    assert (await client.get(PERSISTENT_VOLUMES, pv_name))["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    await reconciler.reconcile(Request(name))
    assert "finalizers" not in (await client.get(OBJECT_TRANSFERS, name))["metadata"]


async def absent(client: KubeClient, ns: str, name: str) -> bool:
    try:
        await client.get(PERSISTENT_VOLUME_CLAIMS, name, ns)
    except NotFound:
        return True
    return False


async def test_pv_bound_elsewhere_waits(env: tuple[KubeClient, TransferReconciler, str, str]) -> None:
    client, reconciler, src, dst = env
    await bound_claim(client, src, "disk", claim_ref={"namespace": src, "name": "someone-else", "uid": "x"})
    name = await create_transfer(client, src, dst)
    pending = await drive(client, reconciler, name, "PV not bound")
    assert pending["status"]["phase"] == "Pending"


async def test_pv_taken_mid_transfer_is_a_permanent_error(env: tuple[KubeClient, TransferReconciler, str, str]
                                                          ) -> None:
    client, reconciler, src, dst = env
    _, pv = await bound_claim(client, src, "disk")
    name = await create_transfer(client, src, dst)
    await drive(client, reconciler, name, "Running")
    for _ in range(3):  # pvReclaim, Retain, delete the source
        await reconciler.reconcile(Request(name))
    assert await absent(client, src, "disk")
    # Someone hands the released volume to another claim before the transfer points it at its target.
    taken = await client.get(PERSISTENT_VOLUMES, pv["metadata"]["name"])
    taken["spec"]["claimRef"] = {"namespace": "elsewhere", "name": "thief"}
    await client.update(PERSISTENT_VOLUMES, taken)
    failed = await drive(client, reconciler, name, "PV bound to wrong PVC")
    assert failed["status"]["phase"] == "Error"
    await reconciler.reconcile(Request(name))  # nothing a retry fixes: left as it is
    assert (await client.get(OBJECT_TRANSFERS, name))["status"] == failed["status"]
    # Deleting it lets it go; the volume keeps Retain.
    await client.delete(OBJECT_TRANSFERS, name)
    await reconciler.reconcile(Request(name))
    with pytest.raises(NotFound):
        await client.get(OBJECT_TRANSFERS, name)
    assert (await client.get(PERSISTENT_VOLUMES, pv["metadata"]["name"]))["spec"][
        "persistentVolumeReclaimPolicy"] == "Retain"


async def test_api_error_mid_transfer_shows_error_with_the_text_in_reason(
        env: tuple[KubeClient, TransferReconciler, str, str]) -> None:
    client, reconciler, src, dst = env
    _, pv = await bound_claim(client, src, "disk")
    name = await create_transfer(client, src, dst)
    await drive(client, reconciler, name, "Running")
    await client.delete(PERSISTENT_VOLUMES, pv["metadata"]["name"])
    with pytest.raises(LookupError):
        await reconciler.reconcile(Request(name))
    failed = await client.get(OBJECT_TRANSFERS, name)
    cond = st.find_condition(failed["status"])
    assert failed["status"]["phase"] == "Error"
    assert cond is not None and (cond["message"], cond["reason"]) == (
        "Error", f'persistentvolumes "{pv["metadata"]["name"]}" not found')


async def test_deleted_before_it_started_is_left_alone(env: tuple[KubeClient, TransferReconciler, str, str]) -> None:
    client, reconciler, src, dst = env
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(OBJECT_TRANSFERS, {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "ObjectTransfer",
        "metadata": {"name": name, "finalizers": ["example.com/hold"]},
        "spec": {"source": {"kind": "PersistentVolumeClaim", "namespace": src, "name": "disk"},
                 "target": {"namespace": dst}}})
    await client.delete(OBJECT_TRANSFERS, name)
    before = await client.get(OBJECT_TRANSFERS, name)
    await reconciler.reconcile(Request(name))
    assert await client.get(OBJECT_TRANSFERS, name) == before
