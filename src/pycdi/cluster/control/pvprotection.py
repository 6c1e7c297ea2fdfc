"""`kubernetes.io/pvc-protection` and `kubernetes.io/pv-protection`, as kube's admission plug-in and controllers.

The StorageObjectInUseProtection admission plug-in puts the finalizers on at creation; the loop adds them to
objects that predate it and removes them once a deleted claim is no longer used by a non-terminated pod, or a
deleted volume is no longer bound.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..apiserver.admission import CREATE, AdmissionRequest
from ..apiserver.service import ObjectService
from ..apiserver.store import DELETED, Event
from . import volumeutil as vu
from .loops import Loop


class StorageObjectInUseProtection:
    """Admission: every new claim and volume carries its protection finalizer."""

    name = "StorageObjectInUseProtection"

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.operation == CREATE and request.info.group == "" and not request.subresource
                and request.info.plural in ("persistentvolumeclaims", "persistentvolumes"))

    async def mutate(self, request: AdmissionRequest) -> None:
        obj = request.object
        if obj is None:
            return
        finalizer = vu.PVC_PROTECTION if request.info.plural == "persistentvolumeclaims" else vu.PV_PROTECTION
        meta = obj.setdefault("metadata", {})
        fins = list(meta.get("finalizers") or [])
        if finalizer not in fins:
            meta["finalizers"] = [*fins, finalizer]

    async def validate(self, request: AdmissionRequest) -> None:
        return None


class ProtectionLoop(Loop):
    """Keys: ("pvc", namespace, name) and ("pv", name)."""

    name = "pv-protection"
    resync_seconds = 30.0

    def on_event(self, event: Event) -> None:
        if event.key == vu.PVC_KEY and event.type != DELETED:
            self.queue.add(("pvc", event.namespace, event.name))
        elif event.key == vu.PV_KEY and event.type != DELETED:
            self.queue.add(("pv", event.name))
        elif event.key == vu.POD_KEY:
            claims = set(vu.claims_of_pod(event.object))
            if event.previous is not None:
                claims |= set(vu.claims_of_pod(event.previous))
            for claim in claims:
                self.queue.add(("pvc", event.namespace, claim))

    def initial_keys(self) -> Iterable[Hashable]:
        keys: list[Hashable] = []
        for pvc in self.store.iter_objects(vu.PVC_KEY):
            keys.append(("pvc", str(vu.meta(pvc).get("namespace")), vu.name_of(pvc)))
        keys.extend(("pv", vu.name_of(pv)) for pv in self.store.iter_objects(vu.PV_KEY))
        return keys

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "pvc":
            ns, name = str(key[1]), str(key[2])
            info = vu.info(self.service, "persistentvolumeclaims")
            obj = self.service.find(info, ns, name)
            finalizer = vu.PVC_PROTECTION
        else:
            ns, name = "", str(key[1])
            info = vu.info(self.service, "persistentvolumes")
            obj = self.service.find(info, "", name)
            finalizer = vu.PV_PROTECTION
        if obj is None:
            return
        fins = vu.meta(obj).get("finalizers") or []
        if not vu.meta(obj).get("deletionTimestamp"):
            if finalizer not in fins:
                await vu.add_finalizer(self.service, info, ns, name, finalizer)
            return
        if finalizer not in fins:
            return
        in_use = (bool(vu.pods_using_claim(self.service, ns, name)) if key[0] == "pvc"
                  else vu.status(obj).get("phase") == "Bound")
        if not in_use:
            await self.service.remove_finalizer(info, ns, name, finalizer)


def register_admission(service: ObjectService) -> None:
    service.admission.register(StorageObjectInUseProtection())
