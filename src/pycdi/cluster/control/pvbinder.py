"""The PersistentVolume controller's binder, as kube-controller-manager's: claims to volumes, phases, events.

Also kube's DefaultStorageClass admission plug-in: a claim created without `storageClassName` gets the default
class; claims that predate the default class get it retroactively here, as kube >= 1.28 does.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver.admission import CREATE, AdmissionRequest
from ..apiserver.service import ObjectService
from ..apiserver.store import DELETED, Event
from . import volumeutil as vu
from .eventrecorder import NORMAL, WARNING, EventRecorder
from .loops import Loop

log = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "persistentvolume-controller"
MSG_NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
MSG_WFFC = "waiting for first consumer to be created before binding"


def external_provisioning_message(provisioner: str) -> str:
    return (f'waiting for a volume to be created, either by external provisioner "{provisioner}" '
            "or manually created by system administrator")


class DefaultStorageClass:
    """Admission: set the default class on claims created without one (an explicit "" is left alone)."""

    name = "DefaultStorageClass"

    def __init__(self, service: ObjectService) -> None:
        self.service = service

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.operation == CREATE and request.info.group == ""
                and request.info.plural == "persistentvolumeclaims" and not request.subresource)

    async def mutate(self, request: AdmissionRequest) -> None:
        obj = request.object
        if obj is None or vu.claim_class(obj) is not None:
            return
        default = vu.default_class(self.service)
        if default is not None and isinstance(obj.get("spec"), dict):
            obj["spec"]["storageClassName"] = vu.name_of(default)

    async def validate(self, request: AdmissionRequest) -> None:
        return None


class PVBinder(Loop):
    """Keys: ("claim", namespace, name) and ("volume", name)."""

    name = "pv-binder"
    resync_seconds = 15.0

    def __init__(self, service: ObjectService, node_name: str) -> None:
        super().__init__(service)
        self.node_name = node_name
        self.events = EventRecorder(service, COMPONENT)
        self._unbound: set[tuple[str, str]] = set()

    # ---- events ----------------------------------------------------------------------------------

    def _requeue_unbound(self) -> None:
        for ns, name in self._unbound:
            self.queue.add(("claim", ns, name))

    def on_event(self, event: Event) -> None:
        obj = event.object
        if event.key == vu.PVC_KEY:
            key = (event.namespace, event.name)
            if event.type == DELETED or vu.spec(obj).get("volumeName"):
                self._unbound.discard(key)
            else:
                self._unbound.add(key)
            self.queue.add(("claim", *key))
            volume = vu.spec(obj).get("volumeName")
            if volume:
                self.queue.add(("volume", str(volume)))
        elif event.key == vu.PV_KEY:
            if event.type != DELETED:
                self.queue.add(("volume", event.name))
            ref = vu.spec(obj).get("claimRef")
            if isinstance(ref, dict) and ref.get("name"):
                self.queue.add(("claim", str(ref.get("namespace") or ""), str(ref["name"])))
            if event.type != DELETED and vu.status(obj).get("phase") == "Available":
                self._requeue_unbound()  # a volume became free: pending claims may fit now
        elif event.key == vu.SC_KEY:
            self._requeue_unbound()

    def initial_keys(self) -> Iterable[Hashable]:
        keys: list[Hashable] = []
        for pvc in self.store.iter_objects(vu.PVC_KEY):
            m = vu.meta(pvc)
            keys.append(("claim", str(m.get("namespace")), str(m.get("name"))))
        for pv in self.store.iter_objects(vu.PV_KEY):
            keys.append(("volume", vu.name_of(pv)))
        return keys

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "claim":
            pvc = self.service.find(vu.info(self.service, "persistentvolumeclaims"), key[1], key[2])
            if pvc is not None:
                await self._sync_claim(pvc)
        else:
            pv = self.service.find(vu.info(self.service, "persistentvolumes"), "", key[1])
            if pv is not None:
                await self._sync_volume(pv)

    # ---- claims ----------------------------------------------------------------------------------

    async def _sync_claim(self, pvc: Obj) -> None:
        if not vu.spec(pvc).get("volumeName"):
            await self._sync_unbound(pvc)
        elif vu.annots(pvc).get(vu.ANN_BIND_COMPLETED) is None:
            await self._sync_prebound(pvc)
        else:
            await self._sync_bound(pvc)

    async def _set_claim_phase(self, pvc: Obj, phase: str) -> Obj:
        new_status = copy.deepcopy(vu.status(pvc))
        new_status["phase"] = phase
        if phase == "Pending":
            new_status.pop("capacity", None)
        return await vu.write_status(self.service, vu.info(self.service, "persistentvolumeclaims"), pvc,
                                     new_status)

    async def _sync_unbound(self, pvc: Obj) -> None:
        if vu.meta(pvc).get("deletionTimestamp"):
            return
        class_name = vu.claim_class(pvc)
        if class_name is None:
            default = vu.default_class(self.service)
            if default is not None:
                # Retroactive default class assignment (kube >= 1.28).
                pvc["spec"]["storageClassName"] = vu.name_of(default)
                await vu.write(self.service, vu.info(self.service, "persistentvolumeclaims"), pvc)
                return
        sc = vu.storage_class(self.service, class_name or "")
        selected = vu.annots(pvc).get(vu.ANN_SELECTED_NODE)
        delayed = sc is not None and sc.get("volumeBindingMode") == vu.WAIT_FOR_FIRST_CONSUMER and not selected
        pv = self._best_match(pvc, delayed, selected or self.node_name)
        if pv is not None:
            await self._bind(pv, pvc)
            return
        if vu.status(pvc).get("phase") != "Pending":
            pvc = await self._set_claim_phase(pvc, "Pending")
        if delayed:
            await self.events.event(pvc, NORMAL, "WaitForFirstConsumer", MSG_WFFC)
        elif not class_name:
            await self.events.event(pvc, NORMAL, "FailedBinding", MSG_NO_CLASS)
        elif sc is None:
            await self.events.event(pvc, WARNING, "ProvisioningFailed",
                                    f'storageclass.storage.k8s.io "{class_name}" not found')
        else:
            await self._hand_to_provisioner(pvc, str(sc.get("provisioner") or ""))

    async def _hand_to_provisioner(self, pvc: Obj, provisioner: str) -> None:
        ann = vu.annots(pvc)
        if ann.get(vu.ANN_STORAGE_PROVISIONER) == provisioner == ann.get(vu.ANN_BETA_STORAGE_PROVISIONER):
            return
        body = copy.deepcopy(pvc)
        body["metadata"].setdefault("annotations", {}).update(
            {vu.ANN_STORAGE_PROVISIONER: provisioner, vu.ANN_BETA_STORAGE_PROVISIONER: provisioner})
        pvc = await vu.write(self.service, vu.info(self.service, "persistentvolumeclaims"), body)
        await self.events.event(pvc, NORMAL, "ExternalProvisioning", external_provisioning_message(provisioner))

    def _best_match(self, pvc: Obj, delayed: bool, node: str) -> Obj | None:
        """kube's FindMatchingVolume: a volume pre-bound to the claim, else the smallest fitting free one."""
        want = vu.request_bytes(pvc)
        mode = vu.volume_mode(pvc)
        class_name = vu.claim_class(pvc) or ""
        labels = vu.node_labels(self.service, node)
        ns, name, uid = str(vu.meta(pvc).get("namespace")), vu.name_of(pvc), vu.uid_of(pvc)
        best: Obj | None = None
        for pv in self.store.iter_objects(vu.PV_KEY):
            pv.setdefault("kind", "PersistentVolume")
            if vu.volume_mode(pv) != mode or vu.meta(pv).get("deletionTimestamp"):
                continue
            if not vu.access_modes_cover(pv, pvc):
                continue
            size = vu.pv_capacity_bytes(pv)
            ref = vu.spec(pv).get("claimRef")
            if isinstance(ref, dict) and ref.get("name") == name and (ref.get("namespace") or "") == ns \
                    and ref.get("uid", uid) in ("", uid):
                if size >= want and vu.node_affinity_matches(pv, node, labels):
                    return pv
                continue
            if delayed or ref or vu.status(pv).get("phase") != "Available":
                continue
            if vu.volume_class(pv) != class_name or not vu.selector_matches(pvc, pv):
                continue
            if size < want or not vu.node_affinity_matches(pv, node, labels):
                continue
            if best is None or size < vu.pv_capacity_bytes(best):
                best = pv
        return best

    def _mismatch(self, pv: Obj, pvc: Obj) -> str:
        """kube's checkVolumeSatisfyClaim, as the reason a pre-bound pair cannot bind ('' when it can)."""
        if vu.pv_capacity_bytes(pv) < vu.request_bytes(pvc):
            return "requested PV is too small"
        if vu.volume_class(pv) != (vu.claim_class(pvc) or ""):
            return "storageClassName does not match"
        if vu.volume_mode(pv) != vu.volume_mode(pvc):
            return "incompatible volumeMode"
        if not vu.access_modes_cover(pv, pvc):
            return "incompatible accessMode"
        return ""

    async def _sync_prebound(self, pvc: Obj) -> None:
        """The user named a volume in spec.volumeName: bind it if it is free and fits."""
        volume = str(vu.spec(pvc)["volumeName"])
        pv = self.service.find(vu.info(self.service, "persistentvolumes"), "", volume)
        if pv is None:
            if vu.status(pvc).get("phase") != "Pending":
                await self._set_claim_phase(pvc, "Pending")
            return
        ref = vu.spec(pv).get("claimRef")
        if isinstance(ref, dict) and ref.get("name") and not self._ref_is(ref, pvc):
            await self.events.event(pvc, WARNING, "FailedBinding",
                                    f'volume "{volume}" already bound to a different claim.')
            return
        reason = self._mismatch(pv, pvc)
        if reason:
            await self.events.event(pvc, WARNING, "VolumeMismatch",
                                    f'Cannot bind to requested volume "{volume}": {reason}')
            return
        await self._bind(pv, pvc)

    @staticmethod
    def _ref_is(ref: dict[str, Any], pvc: Obj) -> bool:
        return (ref.get("name") == vu.name_of(pvc) and (ref.get("namespace") or "") == vu.meta(pvc).get("namespace")
                and ref.get("uid", "") in ("", vu.uid_of(pvc)))

    async def _sync_bound(self, pvc: Obj) -> None:
        volume = str(vu.spec(pvc)["volumeName"])
        pv = self.service.find(vu.info(self.service, "persistentvolumes"), "", volume)
        if pv is None:
            if vu.status(pvc).get("phase") != "Lost":
                pvc = await self._set_claim_phase(pvc, "Lost")
                await self.events.event(pvc, WARNING, "ClaimLost",
                                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = vu.spec(pv).get("claimRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            await self._bind(pv, pvc)  # the volume forgot the claim (user edit): re-establish the link
        elif self._ref_is(ref, pvc):
            await self._bind(pv, pvc)
        elif vu.status(pvc).get("phase") != "Lost":
            pvc = await self._set_claim_phase(pvc, "Lost")
            await self.events.event(pvc, WARNING, "ClaimMisbound",
                                    "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """kube's bind: volume -> claimRef, volume phase, claim -> volumeName, claim status; each idempotent."""
        pv_info = vu.info(self.service, "persistentvolumes")
        pvc_info = vu.info(self.service, "persistentvolumeclaims")
        ns, uid = str(vu.meta(pvc).get("namespace")), vu.uid_of(pvc)
        ref = vu.spec(pv).get("claimRef")
        if not isinstance(ref, dict) or ref.get("uid") != uid or ref.get("name") != vu.name_of(pvc):
            body = copy.deepcopy(pv)
            if not isinstance(ref, dict) or not ref.get("name"):
                body["metadata"].setdefault("annotations", {})[vu.ANN_BOUND_BY_CONTROLLER] = "yes"
            body["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": vu.name_of(pvc),
                                        "uid": uid, "apiVersion": "v1",
                                        "resourceVersion": str(vu.meta(pvc).get("resourceVersion") or "")}
            pv = await vu.write(self.service, pv_info, body)
        if vu.status(pv).get("phase") != "Bound":
            await vu.write_status(self.service, pv_info, pv, {**vu.status(pv), "phase": "Bound"})
        ann = vu.annots(pvc)
        if vu.spec(pvc).get("volumeName") != vu.name_of(pv) or ann.get(vu.ANN_BIND_COMPLETED) != "yes":
            body = copy.deepcopy(pvc)
            annotations = body["metadata"].setdefault("annotations", {})
            if not vu.spec(pvc).get("volumeName"):
                annotations[vu.ANN_BOUND_BY_CONTROLLER] = "yes"
                body["spec"]["volumeName"] = vu.name_of(pv)
            annotations[vu.ANN_BIND_COMPLETED] = "yes"
            pvc = await vu.write(self.service, pvc_info, body)
        new_status = {**vu.status(pvc), "phase": "Bound",
                      "accessModes": list(vu.spec(pv).get("accessModes") or []),
                      "capacity": dict(vu.spec(pv).get("capacity") or {})}
        await vu.write_status(self.service, pvc_info, pvc, new_status)

    # ---- volumes ---------------------------------------------------------------------------------

    async def _set_volume_phase(self, pv: Obj, phase: str, message: str = "") -> Obj:
        new_status: Obj = {k: v for k, v in vu.status(pv).items() if k not in ("message", "reason")}
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        return await vu.write_status(self.service, vu.info(self.service, "persistentvolumes"), pv, new_status)

    async def _sync_volume(self, pv: Obj) -> None:
        ref = vu.spec(pv).get("claimRef")
        phase = vu.status(pv).get("phase")
        if not isinstance(ref, dict) or not ref.get("name"):
            if phase != "Available":
                await self._set_volume_phase(pv, "Available")
            return
        if not ref.get("uid"):
            # Pre-bound by the user to a claim that may not exist yet: available to that claim only.
            if phase != "Available":
                await self._set_volume_phase(pv, "Available")
            return
        pvc = self.service.find(vu.info(self.service, "persistentvolumeclaims"), str(ref.get("namespace") or ""),
                                str(ref["name"]))
        if pvc is None or vu.uid_of(pvc) != ref.get("uid"):
            await self._released(pv)
            return
        volume_name = vu.spec(pvc).get("volumeName")
        if not volume_name:
            self.queue.add(("claim", str(ref.get("namespace") or ""), str(ref["name"])))
        elif volume_name == vu.name_of(pv):
            if phase != "Bound":
                await self._set_volume_phase(pv, "Bound")
        elif vu.annots(pv).get(vu.ANN_BOUND_BY_CONTROLLER):
            # The claim went to another volume: this one is free again.
            body = copy.deepcopy(pv)
            body["spec"].pop("claimRef", None)
            body["metadata"]["annotations"].pop(vu.ANN_BOUND_BY_CONTROLLER, None)
            pv = await vu.write(self.service, vu.info(self.service, "persistentvolumes"), body)
            await self._set_volume_phase(pv, "Available")

    async def _released(self, pv: Obj) -> None:
        """The claim is gone: Released, then the reclaim policy (Delete of dynamic volumes is the provisioner's)."""
        phase = vu.status(pv).get("phase")
        if phase == "Failed":
            return
        if phase != "Released":
            pv = await self._set_volume_phase(pv, "Released")
        policy = vu.spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Retain" or vu.annots(pv).get(vu.ANN_PROVISIONED_BY):
            return
        # A static volume has no deleter (nor recycler) here: kube reports the same for local/hostPath PVs.
        if policy == "Delete":
            message = (f'error getting deleter volume plugin for volume "{vu.name_of(pv)}": '
                       "no deletable volume plugin matched")
            reason = "VolumeFailedDelete"
        else:
            message = "No recycler plugin found for the volume!"
            reason = "VolumeFailedRecycle"
        pv = await self._set_volume_phase(pv, "Failed", message)
        await self.events.event(pv, WARNING, reason, message)


def register_admission(service: ObjectService) -> None:
    service.admission.register(DefaultStorageClass(service))


__all__ = ["PVBinder", "DefaultStorageClass", "register_admission"]
