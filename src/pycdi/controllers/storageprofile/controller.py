"""The StorageProfile controller: one profile per StorageClass, same name, its status computed as upstream's."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from ...kube.client import KubeClient
from ...kube.errors import NotFound
from ...kube.resources import PERSISTENT_VOLUMES, STORAGE_CLASSES, STORAGE_PROFILES, VOLUME_SNAPSHOT_CLASSES
from ..runtime import Controller, Informer, Manager, Request, Result
from . import capabilities as caps

log = logging.getLogger(__name__)

NAME = "storageprofile-controller"
ANN_CLONE_STRATEGY = "cdi.kubevirt.io/clone-strategy"
ANN_DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
ANN_MINIMUM_PVC_SIZE = "cdi.kubevirt.io/minimumSupportedPvcSize"
ANN_USE_RWO_FOR_DATA_IMPORT_CRON = "cdi.kubevirt.io/useReadWriteOnceForDataImportCron"
CDI_LABELS = {"app": "containerized-data-importer", "cdi.kubevirt.io": ""}
ANNOTATION_STRATEGIES = {"copy": "copy", "snapshot": "snapshot", "csi-clone": "csi-clone"}
RECOGNIZED_MESSAGES = {
    "RecognizedProvisioner": ("True", "Provisioner is recognized"),
    "UnrecognizedProvisioner": ("False", "Provisioner is not recognized"),
    "UnrecognizedStorageClassParameters": ("False", "Storage class parameters are not recognized"),
}


class InvalidClaimPropertySets(Exception):
    pass


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StorageProfileReconciler:
    def __init__(self, client: KubeClient, classes: Informer, profiles: Informer, snapshot_classes: Informer,
                 volumes: Informer) -> None:
        self.client = client
        self.classes = classes
        self.profiles = profiles
        self.snapshot_classes = snapshot_classes
        self.volumes = volumes

    async def reconcile(self, request: Request) -> Result:
        sc = self.classes.get(request.name)
        if sc is None or sc["metadata"].get("deletionTimestamp"):
            # As upstream: the profile is not owned by its class; it goes when the class goes.
            if self.profiles.get(request.name) is not None:
                try:
                    await self.client.delete(STORAGE_PROFILES, request.name)
                    log.info("deleted StorageProfile %s: its StorageClass is gone", request.name)
                except NotFound:
                    pass
            return Result()
        cached = self.profiles.get(request.name)
        if cached is None:
            cached = await self._create(request.name)
        desired = self.desired(sc, cached)
        current = cached
        if _meta_differs(cached, desired):
            current = await self.client.update(STORAGE_PROFILES, desired)
        if cached.get("status") != desired.get("status"):
            body = copy.deepcopy(current)
            body["status"] = desired["status"]
            await self.client.update_status(STORAGE_PROFILES, body)
        return Result()

    async def _create(self, name: str) -> dict[str, Any]:
        body = {"apiVersion": STORAGE_PROFILES.api_version, "kind": STORAGE_PROFILES.kind,
                "metadata": {"name": name, "labels": dict(CDI_LABELS)}, "spec": {}}
        created = await self.client.create(STORAGE_PROFILES, body)
        log.info("created StorageProfile %s", name)
        return created

    def snapshot_class(self, sc: dict[str, Any], wanted: str | None) -> str:
        """GetVolumeSnapshotClass: the named one if its driver is the provisioner, else the default-annotated
        one of that driver, else the first by name."""
        provisioner = sc.get("provisioner", "")
        if wanted:
            vsc = self.snapshot_classes.get(wanted)
            # Upstream fails the reconcile when the named class is missing; we report no class instead.
            return wanted if vsc is not None and vsc.get("driver") == provisioner else ""
        candidates = sorted(str(v["metadata"]["name"]) for v in self.snapshot_classes.list()
                            if v.get("driver") == provisioner)
        for name in candidates:
            vsc = self.snapshot_classes.get(name) or {}
            if (vsc["metadata"].get("annotations") or {}).get(ANN_DEFAULT_SNAPSHOT_CLASS) == "true":
                return name
        return candidates[0] if candidates else ""

    def desired(self, sc: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(profile)
        spec = out.get("spec") or {}
        meta = out["metadata"]
        status: dict[str, Any] = copy.deepcopy(out.get("status") or {})
        status["storageClass"] = sc["metadata"]["name"]
        status["provisioner"] = sc.get("provisioner", "")
        snap = self.snapshot_class(sc, spec.get("snapshotClass"))
        if snap:
            status["snapshotClass"] = snap
        else:
            status.pop("snapshotClass", None)  # upstream keeps a stale one; a class that is gone is no class
        status["cloneStrategy"] = clone_strategy(sc, spec.get("cloneStrategy"), snap)
        status["dataImportCronSourceFormat"] = source_format(sc, spec.get("dataImportCronSourceFormat"), snap)
        key = caps.provisioner_key(sc)
        annotations = dict(meta.get("annotations") or {})
        if key in caps.MINIMUM_PVC_SIZE and ANN_MINIMUM_PVC_SIZE not in annotations:
            annotations[ANN_MINIMUM_PVC_SIZE] = caps.MINIMUM_PVC_SIZE[key]
        if key in caps.USE_RWO_FOR_DATA_IMPORT_CRON and ANN_USE_RWO_FOR_DATA_IMPORT_CRON not in annotations:
            annotations[ANN_USE_RWO_FOR_DATA_IMPORT_CRON] = "true"
        if annotations:
            meta["annotations"] = annotations
        meta["labels"] = {**(meta.get("labels") or {}), **CDI_LABELS}
        sets = spec.get("claimPropertySets") or []
        if sets:
            for cps in sets:
                if not cps.get("volumeMode") or not cps.get("accessModes"):
                    raise InvalidClaimPropertySets("each ClaimPropertySet must provide both volume mode and "
                                                   "access modes")
            status["claimPropertySets"] = copy.deepcopy(sets)
        else:
            found = caps.capabilities(sc, self.volumes.list()) or []
            status["claimPropertySets"] = [{"accessModes": [mode], "volumeMode": vm} for mode, vm in found]
        _set_recognized(status, caps.recognized(sc))
        out["status"] = status
        return out


def clone_strategy(sc: dict[str, Any], wanted: str | None, snapshot_class: str) -> str:
    """reconcileCloneStrategy: spec, else the class annotation, else the table; snapshot needs a snapshot class."""
    if wanted:
        return wanted
    annotations = sc["metadata"].get("annotations") or {}
    if ANN_CLONE_STRATEGY in annotations:
        # Upstream maps unknown values to an empty strategy.
        return ANNOTATION_STRATEGIES.get(annotations[ANN_CLONE_STRATEGY], "")
    strategy = "snapshot" if snapshot_class else "copy"
    strategy = caps.CLONE_STRATEGIES.get(caps.provisioner_key(sc), strategy)
    if strategy == "snapshot" and not snapshot_class:
        return "copy"
    return strategy


def source_format(sc: dict[str, Any], wanted: str | None, snapshot_class: str) -> str:
    if wanted:
        return wanted
    fmt = caps.SOURCE_FORMATS.get(caps.provisioner_key(sc), "pvc")
    return "pvc" if fmt == "snapshot" and not snapshot_class else fmt


def _set_recognized(status: dict[str, Any], reason: str) -> None:
    wanted_status, message = RECOGNIZED_MESSAGES[reason]
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    cond = next((c for c in conditions if c.get("type") == "Recognized"), None)
    if cond is None:
        cond = {"type": "Recognized", "status": ""}
        conditions.append(cond)
    if cond.get("status") != wanted_status or cond.get("message") != message or cond.get("reason") != reason:
        now = _now()
        if cond.get("status") != wanted_status:
            cond["status"] = wanted_status
            cond["lastTransitionTime"] = now
        cond["lastHeartbeatTime"] = now
        cond["reason"] = reason
        cond["message"] = message


def _meta_differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("spec") != b.get("spec")
            or any((a["metadata"].get(k) or {}) != (b["metadata"].get(k) or {}) for k in ("labels", "annotations")))


def add_to_manager(manager: Manager, workers: int = 3) -> Controller:
    """Watches classes, profiles, snapshot classes (to the classes of their driver) and PVs (for
    `kubernetes.io/no-provisioner` classes, whose capabilities come from their PVs)."""
    classes = manager.informer(STORAGE_CLASSES)
    profiles = manager.informer(STORAGE_PROFILES)
    snapshot_classes = manager.informer(VOLUME_SNAPSHOT_CLASSES)
    volumes = manager.informer(PERSISTENT_VOLUMES)
    reconciler = StorageProfileReconciler(manager.client, classes, profiles, snapshot_classes, volumes)
    controller = Controller(NAME, reconciler, workers=workers)

    def classes_of_driver(vsc: dict[str, Any]) -> list[Request]:
        return [Request(sc["metadata"]["name"]) for sc in classes.list() if sc.get("provisioner") == vsc.get("driver")]

    def class_of_volume(pv: dict[str, Any]) -> list[Request]:
        name = (pv.get("spec") or {}).get("storageClassName") or ""
        sc = classes.get(name) if name else None
        return [Request(name)] if sc is not None and sc.get("provisioner") == caps.NO_PROVISIONER else []

    controller.watch(classes)
    controller.watch(profiles)
    controller.watch(snapshot_classes, classes_of_driver)
    controller.watch(volumes, class_of_volume)
    manager.add(controller)
    return controller
