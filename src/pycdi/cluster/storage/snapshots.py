"""VolumeSnapshots of hostpath volumes, as the snapshot-controller and the CSI snapshotter sidecar handle them.

A dynamic VolumeSnapshot gets a VolumeSnapshotContent `snapcontent-<snapshot uid>`; the content's snapshot is a
copy of the volume (reflink where the filesystem allows) in the pool's `.snapshots/` directory, and its path is
the `snapshotHandle`. Static contents (`spec.source.snapshotHandle`, a path on this machine) bind to the
snapshot naming them. Finalizers, statuses and deletion policies follow external-snapshotter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Hashable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pycdi.api.quantity import format_quantity

from ..apiserver import errors
from ..apiserver.resources import ResourceInfo
from ..apiserver.service import ObjectService, WriteContext, now_rfc3339
from ..apiserver.store import DELETED, Event
from ..control import volumeutil as vu
from ..control.eventrecorder import NORMAL, WARNING, EventRecorder
from ..control.loops import Loop
from . import volumes
from .blockcopy import copy_block
from .copy import copy_tree
from .hostpathprovisioner import volume_of
from .pools import HPP_KEY, PROVISIONERS, builtin_pool, pool_of_path, pools_of
from .sources import CONTENT_KEY, SNAPSHOT_GROUP, SNAPSHOT_KEY, data_source

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CLASS_KEY = f"{SNAPSHOT_GROUP}/volumesnapshotclasses"
AS_SOURCE = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
BOUND = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
CONTENT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
PVC_AS_SOURCE = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
ANN_DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
COMPONENT = "snapshot-controller"
RETRY_SECONDS = 5.0


def _copy_volume(source: Path, target: Path, block: bool) -> int:
    """Copy a volume into a fresh snapshot (blocking: run in a thread); returns its size in bytes."""
    if target.exists() or target.is_symlink():
        volumes.delete_volume(target)  # the leftover of a crashed attempt
    target.parent.mkdir(parents=True, exist_ok=True)
    if block:
        copy_block(source, target)
        return os.stat(target).st_size
    copy_tree(source, target)
    return 0


class SnapshotLoop(Loop):
    """Keys: ("snapshot", ns, name) for the snapshot-controller's part, ("content", name) for the sidecar's."""

    name = "snapshot-controller"
    resync_seconds = 30.0

    def __init__(self, service: ObjectService, data_dir: Path) -> None:
        super().__init__(service)
        self.data_dir = data_dir
        self.events = EventRecorder(service, COMPONENT)
        #: content -> monotonic time before which a failed snapshot is not retried (its own writes wake us).
        self._retry_at: dict[str, float] = {}

    def _info(self, plural: str) -> ResourceInfo | None:
        return self.catalog.preferred(SNAPSHOT_GROUP, plural)

    def on_event(self, event: Event) -> None:
        obj = event.object
        if event.key == SNAPSHOT_KEY:
            self.queue.add(("snapshot", event.namespace, event.name))
            bound = vu.status(obj).get("boundVolumeSnapshotContentName")
            if bound:
                self.queue.add(("content", str(bound)))
        elif event.key == CONTENT_KEY:
            if event.type != DELETED:
                self.queue.add(("content", event.name))
            ref = vu.spec(obj).get("volumeSnapshotRef") or {}
            if ref.get("name"):
                self.queue.add(("snapshot", str(ref.get("namespace") or ""), str(ref["name"])))
        elif event.key == vu.PVC_KEY:
            source = data_source(obj)
            if source and source.get("kind") == "VolumeSnapshot":
                # A restore finished (or its claim went): the snapshot may now drop as-source protection.
                self.queue.add(("snapshot", event.namespace, str(source.get("name"))))

    def initial_keys(self) -> Iterable[Hashable]:
        keys: list[Hashable] = []
        for snap in self.store.iter_objects(SNAPSHOT_KEY):
            keys.append(("snapshot", str(vu.meta(snap).get("namespace")), vu.name_of(snap)))
        keys.extend(("content", vu.name_of(c)) for c in self.store.iter_objects(CONTENT_KEY))
        return keys


    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        snap_info, content_info = self._info("volumesnapshots"), self._info("volumesnapshotcontents")
        if snap_info is None or content_info is None:
            return  # the CRDs are not established yet; their creation events bring us back
        if key[0] == "snapshot":
            snap = self.service.find(snap_info, str(key[1]), str(key[2]))
            if snap is not None:
                await self._sync_snapshot(snap_info, content_info, snap)
        else:
            content = self.service.find(content_info, "", str(key[1]))
            if content is not None:
                await self._sync_content(content_info, content)

    # ---- snapshots (the snapshot-controller) -----------------------------------------------------

    async def _sync_snapshot(self, info: ResourceInfo, content_info: ResourceInfo, snap: Obj) -> None:
        ns, name = str(vu.meta(snap).get("namespace")), vu.name_of(snap)
        if vu.meta(snap).get("deletionTimestamp"):
            await self._delete_snapshot(info, content_info, snap)
            return
        if not await vu.add_finalizer(self.service, info, ns, name, AS_SOURCE):
            return
        source = vu.spec(snap).get("source") or {}
        content_name = source.get("volumeSnapshotContentName") or f"snapcontent-{vu.uid_of(snap)}"
        content = self.service.find(content_info, "", str(content_name))
        if content is None and source.get("volumeSnapshotContentName"):
            await self._snapshot_error(info, snap, "VolumeSnapshotContent is missing")
            return
        if content is None:
            content = await self._create_content(info, content_info, snap, str(content_name))
            if content is None:
                return
        ref = vu.spec(content).get("volumeSnapshotRef") or {}
        if ref.get("name") != name or ref.get("namespace") != ns:
            await self._snapshot_error(info, snap, f"VolumeSnapshotContent {content_name} is bound to another "
                                                   "snapshot")
            return
        if not ref.get("uid"):
            content["spec"]["volumeSnapshotRef"]["uid"] = vu.uid_of(snap)  # static content: bind it
            content = await vu.write(self.service, content_info, content)
        elif ref.get("uid") != vu.uid_of(snap):
            await self._snapshot_error(info, snap, f"VolumeSnapshotContent {content_name} is bound to another "
                                                   "snapshot")
            return
        if not await vu.add_finalizer(self.service, info, ns, name, BOUND):
            return
        snap = self.service.find(info, ns, name) or snap
        await self._mirror_status(info, snap, content)

    async def _snapshot_error(self, info: ResourceInfo, snap: Obj, message: str) -> None:
        await self.events.event(snap, WARNING, "SnapshotContentCheckandUpdateFailed", message)
        new_status = {**vu.status(snap), "readyToUse": False, "error": {"message": message, "time": now_rfc3339()}}
        if vu.status(snap).get("error", {}).get("message") != message:
            await vu.write_status(self.service, info, snap, new_status)

    async def _create_content(self, info: ResourceInfo, content_info: ResourceInfo, snap: Obj,
                              content_name: str) -> Obj | None:
        ns, name = str(vu.meta(snap).get("namespace")), vu.name_of(snap)
        claim = str((vu.spec(snap).get("source") or {}).get("persistentVolumeClaimName") or "")
        pvc = self.store.get(vu.PVC_KEY, ns, claim)
        pv = self.store.get(vu.PV_KEY, "", str(vu.spec(pvc).get("volumeName") or "")) if pvc else None
        if pvc is None or pv is None or vu.status(pvc).get("phase") != "Bound":
            what = "not found" if pvc is None else "not bound"
            await self._snapshot_error(info, snap, f"failed to get input parameters to create snapshot {name}: "
                                                   f'"the PVC {claim} is {what}"')
            return None
        driver = str(vu.annots(pv).get(vu.ANN_PROVISIONED_BY) or "")
        class_name = vu.spec(snap).get("volumeSnapshotClassName")
        if not class_name:
            default = self._default_class(driver)
            if default is None:
                await self._snapshot_error(info, snap, f"cannot find default snapshot class for driver {driver}")
                return None
            snap["spec"]["volumeSnapshotClassName"] = class_name = vu.name_of(default)
            snap = await vu.write(self.service, info, snap)
        snapshot_class = self.store.get(CLASS_KEY, "", str(class_name))
        if snapshot_class is None:
            await self._snapshot_error(info, snap, f'failed to get input parameters to create snapshot {name}: '
                                                   f'"volumesnapshotclasses.{SNAPSHOT_GROUP} \\"{class_name}\\" '
                                                   'not found"')
            return None
        await vu.add_finalizer(self.service, vu.info(self.service, "persistentvolumeclaims"), ns, claim,
                               PVC_AS_SOURCE)
        body = {
            "apiVersion": content_info.api_version, "kind": "VolumeSnapshotContent",
            "metadata": {"name": content_name, "finalizers": [CONTENT_BOUND]},
            "spec": {
                "volumeSnapshotRef": {"kind": "VolumeSnapshot", "apiVersion": info.api_version, "name": name,
                                      "namespace": ns, "uid": vu.uid_of(snap),
                                      "resourceVersion": vu.meta(snap).get("resourceVersion")},
                "source": {"volumeHandle": vu.name_of(pv)},
                "driver": str(snapshot_class.get("driver") or driver),
                "deletionPolicy": str(snapshot_class.get("deletionPolicy") or "Delete"),
                "volumeSnapshotClassName": str(class_name),
                "sourceVolumeMode": vu.volume_mode(pv),
            },
        }
        try:
            content = await self.service.create(content_info, "", body, WriteContext())
        except errors.APIError as e:
            if e.code != 409:
                raise
            return self.service.find(content_info, "", content_name)
        await self.events.event(snap, NORMAL, "CreatingSnapshot",
                                f"Waiting for a snapshot {ns}/{name} to be created by the CSI driver.")
        return content

    def _default_class(self, driver: str) -> Obj | None:
        for cls in self.store.iter_objects(CLASS_KEY):
            if vu.annots(cls).get(ANN_DEFAULT_SNAPSHOT_CLASS) == "true" and (
                    cls.get("driver") == driver or (cls.get("driver") in PROVISIONERS and driver in PROVISIONERS)):
                return cls
        return None

    async def _mirror_status(self, info: ResourceInfo, snap: Obj, content: Obj) -> None:
        content_status = vu.status(content)
        new_status: Obj = {"boundVolumeSnapshotContentName": vu.name_of(content),
                           "readyToUse": bool(content_status.get("readyToUse"))}
        if content_status.get("creationTime") is not None:
            seconds = int(content_status["creationTime"]) / 1e9
            new_status["creationTime"] = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if content_status.get("restoreSize") is not None:
            new_status["restoreSize"] = format_quantity(int(content_status["restoreSize"]))
        if content_status.get("error"):
            new_status["error"] = content_status["error"]
        if new_status == vu.status(snap):
            return
        became_ready = new_status["readyToUse"] and not vu.status(snap).get("readyToUse")
        await vu.write_status(self.service, info, snap, new_status)
        if became_ready:
            ns, name = vu.meta(snap).get("namespace"), vu.name_of(snap)
            await self.events.event(snap, NORMAL, "SnapshotCreated",
                                    f"Snapshot {ns}/{name} was successfully created by the CSI driver.")
            await self.events.event(snap, NORMAL, "SnapshotReady", f"Snapshot {ns}/{name} is ready to use.")
            claim = (vu.spec(snap).get("source") or {}).get("persistentVolumeClaimName")
            if claim:
                await self.service.remove_finalizer(vu.info(self.service, "persistentvolumeclaims"), str(ns),
                                                    str(claim), PVC_AS_SOURCE)

    def _restoring_from(self, ns: str, name: str) -> bool:
        for pvc in self.store.iter_objects(vu.PVC_KEY, ns):
            source = data_source(pvc)
            if (source and source.get("kind") == "VolumeSnapshot" and source.get("name") == name
                    and vu.status(pvc).get("phase") == "Pending" and not vu.meta(pvc).get("deletionTimestamp")):
                return True
        return False

    async def _delete_snapshot(self, info: ResourceInfo, content_info: ResourceInfo, snap: Obj) -> None:
        ns, name = str(vu.meta(snap).get("namespace")), vu.name_of(snap)
        fins = vu.meta(snap).get("finalizers") or []
        if AS_SOURCE in fins:
            if self._restoring_from(ns, name):
                return  # a claim is being restored from it; that claim's events bring us back
            await self.service.remove_finalizer(info, ns, name, AS_SOURCE)
        content_name = vu.status(snap).get("boundVolumeSnapshotContentName")
        content = self.service.find(content_info, "", str(content_name)) if content_name else None
        if content is not None and vu.spec(content).get("deletionPolicy") == "Delete" \
                and not vu.meta(content).get("deletionTimestamp"):
            try:
                await self.service.delete(content_info, "", vu.name_of(content), None, WriteContext())
            except errors.APIError as e:
                if e.code != 404:
                    raise
        claim = (vu.spec(snap).get("source") or {}).get("persistentVolumeClaimName")
        if claim:
            await self.service.remove_finalizer(vu.info(self.service, "persistentvolumeclaims"), ns, str(claim),
                                                PVC_AS_SOURCE)
        await self.service.remove_finalizer(info, ns, name, BOUND)

    # ---- contents (the CSI snapshotter sidecar) --------------------------------------------------

    async def _sync_content(self, info: ResourceInfo, content: Obj) -> None:
        name = vu.name_of(content)
        spec = vu.spec(content)
        if spec.get("driver") not in PROVISIONERS or name in self.jobs:
            return
        ref = spec.get("volumeSnapshotRef") or {}
        snap = self.store.get(SNAPSHOT_KEY, str(ref.get("namespace") or ""), str(ref.get("name") or ""))
        snapshot_gone = bool(ref.get("uid")) and (snap is None or vu.uid_of(snap) != ref.get("uid"))
        handle = vu.status(content).get("snapshotHandle") or (spec.get("source") or {}).get("snapshotHandle")
        if vu.meta(content).get("deletionTimestamp"):
            if spec.get("deletionPolicy") == "Delete" and handle:
                await asyncio.to_thread(volumes.delete_volume, Path(str(handle)))
            await self.service.remove_finalizer(info, "", name, CONTENT_BOUND)
            return
        if snapshot_gone and spec.get("deletionPolicy") == "Delete":
            await self.service.delete(info, "", name, None, WriteContext())
            return
        if snapshot_gone:
            return  # Retain: the content (and its data) outlive the snapshot
        if (spec.get("source") or {}).get("snapshotHandle"):
            await self._static_status(info, content, Path(str(handle)))
        elif not vu.status(content).get("snapshotHandle"):
            if time.monotonic() < self._retry_at.get(name, 0.0):
                return
            self.start_job(name, self._take(info, content), f"snapshot:{name}")

    async def _static_status(self, info: ResourceInfo, content: Obj, handle: Path) -> None:
        if vu.status(content).get("readyToUse") is not None:
            return
        exists = handle.exists()
        new_status: Obj = {"snapshotHandle": str(handle), "readyToUse": exists,
                           "creationTime": time.time_ns()}
        if exists and handle.is_file():
            new_status["restoreSize"] = handle.stat().st_size
        await vu.write_status(self.service, info, content, new_status)

    def _target(self, pv: Obj, content_name: str) -> Path:
        volume = volume_of(pv)
        pools = [p for h in self.store.iter_objects(HPP_KEY) for p in pools_of(h)] + [builtin_pool(self.data_dir)]
        pool = pool_of_path(volume.data, pools) if volume is not None else None
        return (pool or builtin_pool(self.data_dir)).snapshots / content_name

    async def _take(self, info: ResourceInfo, content: Obj) -> None:
        name = vu.name_of(content)
        try:
            pv = self.store.get(vu.PV_KEY, "", str((vu.spec(content).get("source") or {}).get("volumeHandle")))
            volume = volume_of(pv) if pv is not None else None
            if pv is None or volume is None:
                raise RuntimeError(f"the source volume of {name} is gone")
            target = self._target(pv, name)
            block = vu.volume_mode(pv) == "Block"
            size = await asyncio.to_thread(_copy_volume, volume.path if block else volume.data, target, block)
            fresh = self.service.find(info, "", name)
            if fresh is None:
                await asyncio.to_thread(volumes.delete_volume, target)
                return
            await vu.write_status(self.service, info, fresh, {
                "snapshotHandle": str(target), "readyToUse": True, "creationTime": time.time_ns(),
                "restoreSize": max(size, vu.pv_capacity_bytes(pv))})
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("snapshot %s failed: %s", name, e)
            fresh = self.service.find(info, "", name)
            if fresh is not None:
                await self.events.event(fresh, WARNING, "SnapshotCreationFailed", str(e))
                status = {**vu.status(fresh), "readyToUse": False, "error": {"message": str(e), "time": now_rfc3339()}}
                await vu.write_status(self.service, info, fresh, status)
            self._retry_at[name] = time.monotonic() + RETRY_SECONDS
            self.queue.add_after(("content", name), RETRY_SECONDS)


__all__ = ["SnapshotLoop", "AS_SOURCE", "BOUND", "CONTENT_BOUND"]
