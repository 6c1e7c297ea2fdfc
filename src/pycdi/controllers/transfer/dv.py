"""DataVolume transfer (upstream's dataVolumeTransferHandler): the DataVolume is set aside, its claim moves with a
child PVC transfer `pvc-transfer-<uid>`, and the DataVolume is recreated in the target to adopt the moved claim.

Running, one step per reconcile:
1. the claim loses the DataVolume's ownerReference and `populatedFor` (so deleting the DataVolume keeps it);
2. the source DataVolume is deleted (exactly the saved one);
3. the child transfer is created (unless it or the target DataVolume already exists) and runs to Complete;
4. the moved claim is annotated `populatedFor=<target DataVolume>`;
5. the target DataVolume is created from the saved one; it adopts the claim without importing again;
6. once it is Succeeded the child transfer is deleted; Complete.
Before the DataVolume is touched, Pending also waits for its claim to be movable at all (bound, no protection
finalizer): upstream finds out only in the child, with the DataVolume already gone.
"""

from __future__ import annotations

import copy

from ...api import constants as c
from ...kube.resources import DATA_VOLUMES, PERSISTENT_VOLUME_CLAIMS
from ..runtime import Result
from . import state
from .api import OBJECT_TRANSFERS, Transfer
from .base import DONE, IN_USE_REQUEUE, NEXT, WAIT, Handler

#: Upstream's labels on the child transfer (CDILabelKey, CDIComponentLabel, the recommended labels).
CHILD_LABELS = {"app": "containerized-data-importer", "cdi.kubevirt.io": "",
                "app.kubernetes.io/component": "storage", "app.kubernetes.io/managed-by": "cdi-controller"}
#: Upstream waits a second after freeing the claim before deleting the DataVolume.
FREED_REQUEUE = 1.0


class DataVolumeTransfer(Handler):
    resource = DATA_VOLUMES

    async def pending(self, t: Transfer) -> Result:
        dv = await self.api.get(DATA_VOLUMES, t.source_name, t.source_namespace)
        if dv is None:
            await t.set(state.MSG_NO_SOURCE)
            return WAIT
        if (dv.get("status") or {}).get("phase") != c.DataVolumePhase.SUCCEEDED:
            await t.set(state.MSG_SOURCE_NOT_POPULATED)
            return WAIT
        claim = state.dv_claim_name(dv)
        if self.pods_using(t.source_namespace, claim):
            await t.set(state.MSG_PODS_USING_DV_PVC)
            return Result(requeue_after=IN_USE_REQUEUE)
        pvc = await self.api.get(PERSISTENT_VOLUME_CLAIMS, claim, t.source_namespace)
        if pvc is not None:
            if state.unbound(pvc):
                await t.set(state.MSG_PVC_NOT_BOUND)
                return WAIT
            for finalizer in state.PROTECTION_FINALIZERS:
                if finalizer in (pvc["metadata"].get("finalizers") or []):
                    await t.set(state.finalizer_message(finalizer))
                    return WAIT
        return await self.claim_source(t, dv, {state.DATA_PVC_NAME: claim})

    async def running(self, t: Transfer) -> Result:
        saved_uid = ((state.saved_source(t.ot) or {}).get("metadata") or {}).get("uid")
        dv = await self.api.get(DATA_VOLUMES, t.source_name, t.source_namespace)
        if dv is not None and (saved_uid is None or dv["metadata"].get("uid") == saved_uid):
            return await self._set_aside(t, dv)
        child_name = state.child_name(t.ot)
        child = await self.api.get(OBJECT_TRANSFERS, child_name)
        target = await self.api.get(DATA_VOLUMES, t.target_name, t.target_namespace)
        if target is None and child is None:
            child = await self.api.create(OBJECT_TRANSFERS, {
                "apiVersion": OBJECT_TRANSFERS.api_version, "kind": OBJECT_TRANSFERS.kind,
                "metadata": {"name": child_name,
                             "labels": CHILD_LABELS},
                "spec": {"source": {"kind": state.KIND_PVC, "namespace": t.source_namespace,
                                    "name": t.data.get(state.DATA_PVC_NAME, t.source_name)},
                         "target": {"namespace": t.target_namespace, "name": t.target_name},
                         "parentName": t.name}})
        if child is not None:
            if (child.get("status") or {}).get("phase") != c.ObjectTransferPhase.COMPLETE:
                await t.set(state.MSG_PVC_TRANSFER, phase=state.P.RUNNING)
                return WAIT  # the child's changes bring us back (parentName)
            pvc = await self.api.get(PERSISTENT_VOLUME_CLAIMS, state.target_name(child), state.target_namespace(child))
            if pvc is None:
                await t.set(state.MSG_NO_TRANSFERRED_PVC, phase=state.P.ERROR)
                return DONE
            annotations = pvc["metadata"].get("annotations") or {}
            populated = annotations.get(c.ANN_POPULATED_FOR)
            if populated is not None and populated != t.target_name:
                await t.set(state.MSG_POPULATED_FOR_OTHER, phase=state.P.ERROR)
                return DONE
            if populated is None:
                body = copy.deepcopy(pvc)
                body["metadata"].setdefault("annotations", {})[c.ANN_POPULATED_FOR] = t.target_name
                await self.api.update(PERSISTENT_VOLUME_CLAIMS, body)
        if target is None:
            target = await self.api.create(DATA_VOLUMES, state.target_object(t.ot))
        if (target.get("status") or {}).get("phase") != c.DataVolumePhase.SUCCEEDED:
            await t.set(state.MSG_WAITING_TARGET_DV, phase=state.P.RUNNING)
            return WAIT  # the target's status changes bring us back
        if child is not None and not child["metadata"].get("deletionTimestamp"):
            await self.api.delete(OBJECT_TRANSFERS, child)
        await t.set(state.MSG_COMPLETE, done=True, phase=state.P.COMPLETE, data=None)
        return NEXT  # removes the finalizer

    async def _set_aside(self, t: Transfer, dv: state.Obj) -> Result:
        """deleteDataVolume: free the claim from the DataVolume, then delete the DataVolume."""
        pvc = await self.api.get(PERSISTENT_VOLUME_CLAIMS, t.data.get(state.DATA_PVC_NAME, t.source_name),
                                 t.source_namespace)
        if pvc is None:
            await t.set(state.MSG_DV_NO_PVC)
            return WAIT
        meta = pvc["metadata"]
        refs = meta.get("ownerReferences") or []
        kept = [r for r in refs if not (r.get("kind") == state.KIND_DV and r.get("name") == dv["metadata"]["name"]
                                        and r.get("uid") == dv["metadata"].get("uid"))]
        annotations = meta.get("annotations") or {}
        if len(kept) != len(refs) or c.ANN_POPULATED_FOR in annotations:
            body = copy.deepcopy(pvc)
            if kept:
                body["metadata"]["ownerReferences"] = kept
            else:
                body["metadata"].pop("ownerReferences", None)
            (body["metadata"].get("annotations") or {}).pop(c.ANN_POPULATED_FOR, None)
            await self.api.update(PERSISTENT_VOLUME_CLAIMS, body)
            await t.running()
            return Result(requeue_after=FREED_REQUEUE)
        await self.api.delete(DATA_VOLUMES, dv)
        await t.running()
        return NEXT
