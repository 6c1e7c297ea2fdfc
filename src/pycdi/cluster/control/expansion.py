"""Volume expansion: kube's PersistentVolumeClaimResize admission, expand controller and an online CSI resizer.

A bound claim whose class allows expansion may ask for more; the volume grows at once (a Block volume's file and
loop device; a Filesystem volume is a directory, so only its recorded capacity changes), then the PV's capacity
and the claim's status.capacity follow, with the events kube's expand controller and external-resizer emit.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.admission import UPDATE, AdmissionRequest
from ..apiserver.service import ObjectService
from ..apiserver.store import DELETED, Event
from . import volumeutil as vu
from .eventrecorder import NORMAL, WARNING, EventRecorder
from .loops import Loop

Obj = dict[str, Any]
RESIZE_FORBIDDEN = ("only dynamically provisioned pvc can be resized and the storageclass that provisions "
                    "the pvc must support resize")
#: Grows a provisioned volume on this machine (the storage package's; blocking, run in a thread).
Grower = Callable[[Obj, int], None]


class PersistentVolumeClaimResize:
    """Admission: a claim may grow only when its class says `allowVolumeExpansion: true`."""

    name = "PersistentVolumeClaimResize"

    def __init__(self, service: ObjectService) -> None:
        self.service = service

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.operation == UPDATE and request.info.group == "" and not request.subresource
                and request.info.plural == "persistentvolumeclaims")

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        new, old = request.object, request.old_object
        if new is None or old is None or vu.request_bytes(new) <= vu.request_bytes(old):
            return
        sc = vu.storage_class(self.service, vu.claim_class(old) or "")
        if sc is None or sc.get("allowVolumeExpansion") is not True:
            raise errors.forbidden_message(f'persistentvolumeclaims "{request.name}" is forbidden: '
                                           f"{RESIZE_FORBIDDEN}", "", "persistentvolumeclaims", request.name)


class ExpansionLoop(Loop):
    """Keys: ("pvc", namespace, name)."""

    name = "volume-expansion"
    resync_seconds = 30.0

    def __init__(self, service: ObjectService, grow: Grower, provisioners: frozenset[str]) -> None:
        super().__init__(service)
        self.grow = grow
        self.provisioners = provisioners
        self.expander_events = EventRecorder(service, "volume_expand")
        self.resizer_events = EventRecorder(service, "external-resizer")

    def on_event(self, event: Event) -> None:
        if event.key == vu.PVC_KEY and event.type != DELETED:
            self.queue.add(("pvc", event.namespace, event.name))

    def initial_keys(self) -> Iterable[Hashable]:
        return [("pvc", str(vu.meta(p).get("namespace")), vu.name_of(p)) for p in self.store.iter_objects(vu.PVC_KEY)]

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        pvc_info, pv_info = vu.info(self.service, "persistentvolumeclaims"), vu.info(self.service, "persistentvolumes")
        pvc = self.service.find(pvc_info, str(key[1]), str(key[2]))
        if pvc is None or vu.status(pvc).get("phase") != "Bound":
            return
        want = vu.request_bytes(pvc)
        if want <= vu.claim_capacity_bytes(pvc):
            return
        pv = self.service.find(pv_info, "", str(vu.spec(pvc).get("volumeName") or ""))
        sc = vu.storage_class(self.service, vu.claim_class(pvc) or "")
        if pv is None or sc is None or sc.get("allowVolumeExpansion") is not True:
            return
        if vu.annots(pv).get(vu.ANN_PROVISIONED_BY) not in self.provisioners:
            return  # not our volume: nobody here can expand it
        await self.expander_events.event(pvc, NORMAL, "ExternalExpanding",
                                         "waiting for an external controller to expand this PVC")
        await self.resizer_events.event(pvc, NORMAL, "Resizing",
                                        f"External resizer is resizing volume {vu.name_of(pv)}")
        quantity = vu.request_quantity(pvc)
        if vu.pv_capacity_bytes(pv) < want:
            try:
                await asyncio.to_thread(self.grow, pv, want)
            except Exception as e:
                await self.resizer_events.event(pvc, WARNING, "VolumeResizeFailed", f"resize volume {vu.name_of(pv)} "
                                                f"failed: {e}")
                raise
            body = copy.deepcopy(pv)
            body["spec"]["capacity"] = {**vu.spec(pv).get("capacity", {}), "storage": quantity}
            await vu.write(self.service, pv_info, body)
        new_status = {**vu.status(pvc), "capacity": {**(vu.status(pvc).get("capacity") or {}), "storage": quantity},
                      "allocatedResources": {"storage": quantity}}
        new_status.pop("allocatedResourceStatuses", None)
        new_status["conditions"] = [c for c in new_status.get("conditions") or []
                                    if c.get("type") not in ("Resizing", "FileSystemResizePending")]
        if not new_status["conditions"]:
            del new_status["conditions"]
        await vu.write_status(self.service, pvc_info, pvc, new_status)
        await self.resizer_events.event(pvc, NORMAL, "VolumeResizeSuccessful", "Resize volume succeeded")


def register_admission(service: ObjectService) -> None:
    service.admission.register(PersistentVolumeClaimResize(service))
