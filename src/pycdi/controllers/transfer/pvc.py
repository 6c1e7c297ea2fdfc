"""PersistentVolumeClaim transfer: the PV stays, only the claim moves (upstream's pvcTransferHandler).

Running, one step per reconcile, each derived from what the API shows and recorded before it is taken:
1. `pvReclaim` (the PV's reclaim policy) saved in status.data;
2. the PV set to Retain, so nothing reclaims it while no claim holds it;
3. the source claim deleted (exactly the saved one: UID precondition);
4. the PV's claimRef pointed at the target (no UID: kube's binder offers it to that claim only);
5. the target claim created from the saved one;
6. once it is Bound, the saved reclaim policy restored; Complete.
A crash between any two leaves a state the next reconcile recognises; the PV is Retain from before the source
claim goes until the target holds it.
"""

from __future__ import annotations

import copy

from ...kube.resources import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES
from ..runtime import Result
from . import state
from .api import Transfer
from .base import DONE, IN_USE_REQUEUE, NEXT, WAIT, Handler

RETAIN = "Retain"


class PVCTransfer(Handler):
    resource = PERSISTENT_VOLUME_CLAIMS

    async def pending(self, t: Transfer) -> Result:
        pvc = await self.api.get(PERSISTENT_VOLUME_CLAIMS, t.source_name, t.source_namespace)
        if pvc is None:
            await t.set(state.MSG_NO_SOURCE)  # the claim's creation brings us back
            return WAIT
        if state.unbound(pvc):
            await t.set(state.MSG_PVC_NOT_BOUND)
            return WAIT
        for finalizer in state.PROTECTION_FINALIZERS:
            if finalizer in (pvc["metadata"].get("finalizers") or []):
                await t.set(state.finalizer_message(finalizer))
                return WAIT
        pv_name = str(pvc["spec"]["volumeName"])
        pv = await self.api.get(PERSISTENT_VOLUMES, pv_name)
        if pv is None or not state.claim_ref_is(pv, t.source_namespace, t.source_name):
            await t.set(state.MSG_PV_NOT_BOUND)
            return WAIT
        if self.pods_using(t.source_namespace, t.source_name):
            await t.set(state.MSG_PODS_USING_PVC)
            return Result(requeue_after=IN_USE_REQUEUE)
        return await self.claim_source(t, pvc, {state.DATA_PV_NAME: pv_name})

    async def running(self, t: Transfer) -> Result:
        data = t.data
        pv_name = data.get(state.DATA_PV_NAME)
        if not pv_name:
            await t.set(state.MSG_PV_NAME_MISSING, phase=state.P.ERROR)
            return DONE
        pv = await self.api.get(PERSISTENT_VOLUMES, pv_name)
        if pv is None:
            raise LookupError(f'persistentvolumes "{pv_name}" not found')
        reclaim = data.get(state.DATA_PV_RECLAIM)
        if reclaim is None:
            data[state.DATA_PV_RECLAIM] = str(pv["spec"].get("persistentVolumeReclaimPolicy") or "")
            await t.running(data)
            return NEXT
        saved = state.saved_source(t.ot) or {}
        source = await self.api.get(PERSISTENT_VOLUME_CLAIMS, t.source_name, t.source_namespace)
        # The same PV, as upstream asserts (a claim recreated meanwhile by its DataVolume is another claim).
        if source is not None and (source.get("spec") or {}).get("volumeName") == pv_name:
            if pv["spec"].get("persistentVolumeReclaimPolicy") != RETAIN:
                await self._set_reclaim(pv, RETAIN)
                await t.running()
                return NEXT
            if not source["metadata"].get("deletionTimestamp"):
                await self.api.delete(PERSISTENT_VOLUME_CLAIMS, source,
                                      uid=(saved.get("metadata") or {}).get("uid") or None)
                await t.running()
            return WAIT  # its deletion (pvc-protection waits for pods) brings us back
        if pv["spec"].get("claimRef") is None or state.claim_ref_is(pv, t.source_namespace, t.source_name):
            body = copy.deepcopy(pv)
            body["spec"]["claimRef"] = {"namespace": t.target_namespace, "name": t.target_name}
            pv = await self.api.update(PERSISTENT_VOLUMES, body)
        if not state.claim_ref_is(pv, t.target_namespace, t.target_name):
            await t.set(state.MSG_WRONG_PVC, phase=state.P.ERROR)
            return DONE
        target = await self.api.get(PERSISTENT_VOLUME_CLAIMS, t.target_name, t.target_namespace)
        if target is None:
            await self.api.create(PERSISTENT_VOLUME_CLAIMS,
                                  state.target_object(t.ot, drop_annotations=(state.ANN_BIND_COMPLETED,)))
            await t.running()
            return NEXT
        if (target.get("status") or {}).get("phase") != "Bound":
            await t.set(state.MSG_WAITING_TARGET_BOUND, phase=state.P.RUNNING)
            return WAIT  # the binder's update of the claim brings us back
        if pv["spec"].get("persistentVolumeReclaimPolicy") != reclaim:
            await self._set_reclaim(pv, reclaim)
            await t.running()
            return NEXT
        await t.set(state.MSG_COMPLETE, done=True, phase=state.P.COMPLETE, data=None)
        return NEXT  # removes the finalizer

    async def _set_reclaim(self, pv: state.Obj, policy: str) -> None:
        body = copy.deepcopy(pv)
        body["spec"]["persistentVolumeReclaimPolicy"] = policy
        await self.api.update(PERSISTENT_VOLUMES, body)
