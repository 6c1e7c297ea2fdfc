"""The external-provisioner role for the hostpath provisioner: dynamic volumes, CSI-style clones and restores.

Claims the binder handed over (`volume.kubernetes.io/storage-provisioner` naming one of our provisioners) get a
volume in their class's storage pool and a PV bound in advance to them (`pvc-<claim uid>`, as external-provisioner
names it). A `dataSource`/`dataSourceRef` of kind PersistentVolumeClaim is a clone (external-provisioner's rules
and messages; the source carries `provisioner.storage.kubernetes.io/cloning-protection` meanwhile), of kind
VolumeSnapshot a restore. Copies run in a thread, several at once; the PV is created only after the copy, so a
crash mid-copy leaves no PV and the next attempt starts again from a fresh target.
Released PVs of ours with reclaim policy Delete lose their data and are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from ..apiserver.store import DELETED, Event
from ..control import volumeutil as vu
from ..control.eventrecorder import NORMAL, WARNING, EventRecorder
from ..control.loops import Loop
from . import hostpathprovisioner as hpp
from . import volumes
from .blockcopy import copy_block
from .copy import copy_tree
from .pools import HPP_KEY, PROVISIONERS, StoragePool, select_pool
from .sources import SNAPSHOT_KEY, SourceError, VolumeSource, resolve_source

log = logging.getLogger(__name__)

Obj = dict[str, Any]
COMPONENT = "kubevirt.io.hostpath-provisioner"
RETRY_SECONDS = 5.0


def copy_into(source: VolumeSource, target: hpp.Volume, mode: str) -> None:
    """Fill a fresh target volume from a source (blocking: run in a thread)."""
    if mode == "Block":
        copy_block(source.data, target.path)
    else:
        copy_tree(source.data, target.data)


class Provisioner(Loop):
    """Keys: ("claim", ns, name) to provision, ("volume", name) to delete, ("source", ns, name) to unprotect."""

    name = "provisioner"
    resync_seconds = 30.0

    def __init__(self, service: ObjectService, data_dir: Path, node_name: str) -> None:
        super().__init__(service)
        self.data_dir = data_dir
        self.node_name = node_name
        self.events = EventRecorder(service, COMPONENT)
        #: (namespace, source kind, source name) -> claims waiting for that source to become usable.
        self._waiting: dict[tuple[str, str, str], set[str]] = {}
        #: (namespace, source claim) -> claims being cloned from it right now.
        self._cloning: dict[tuple[str, str], set[str]] = {}
        self._reattached: set[str] = set()
        #: claim key -> monotonic time before which a failed attempt is not retried.
        self._retry_at: dict[Hashable, float] = {}

    # ---- events ----------------------------------------------------------------------------------

    def _wake_waiters(self, namespace: str, kind: str, name: str) -> None:
        for claim in self._waiting.get((namespace, kind, name), ()):
            self.queue.add(("claim", namespace, claim))

    def on_event(self, event: Event) -> None:
        obj = event.object
        if event.key == vu.PVC_KEY:
            self._wake_waiters(event.namespace, "PersistentVolumeClaim", event.name)
            if event.type != DELETED:
                self.queue.add(("claim", event.namespace, event.name))
                if vu.CLONE_PROTECTION in (vu.meta(obj).get("finalizers") or []):
                    self.queue.add(("source", event.namespace, event.name))
        elif event.key == vu.PV_KEY and event.type != DELETED:
            self.queue.add(("volume", event.name))
        elif event.key == SNAPSHOT_KEY:
            self._wake_waiters(event.namespace, "VolumeSnapshot", event.name)
        elif event.key in (vu.SC_KEY, HPP_KEY):
            for (ns, _, _), claims in list(self._waiting.items()):
                for claim in claims:
                    self.queue.add(("claim", ns, claim))

    def initial_keys(self) -> Iterable[Hashable]:
        keys: list[Hashable] = []
        for pvc in self.store.iter_objects(vu.PVC_KEY):
            m = vu.meta(pvc)
            keys.append(("claim", str(m.get("namespace")), str(m.get("name"))))
            if vu.CLONE_PROTECTION in (m.get("finalizers") or []):
                keys.append(("source", str(m.get("namespace")), str(m.get("name"))))
        keys.extend(("volume", vu.name_of(pv)) for pv in self.store.iter_objects(vu.PV_KEY))
        return keys


    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        if key[0] == "claim":
            await self._sync_claim(str(key[1]), str(key[2]))
        elif key[0] == "volume":
            await self._sync_volume(str(key[1]))
        else:
            await self._unprotect(str(key[1]), str(key[2]))

    # ---- provisioning ----------------------------------------------------------------------------

    def _forget_wait(self, namespace: str, claim: str) -> None:
        for (ns, kind, name), claims in list(self._waiting.items()):
            if ns == namespace:
                claims.discard(claim)
                if not claims:
                    del self._waiting[(ns, kind, name)]

    async def _sync_claim(self, namespace: str, name: str) -> None:
        key = ("claim", namespace, name)
        if key in self.jobs or time.monotonic() < self._retry_at.get(key, 0.0):
            return
        pvc = self.service.find(vu.info(self.service, "persistentvolumeclaims"), namespace, name)
        if (pvc is None or vu.spec(pvc).get("volumeName") or vu.meta(pvc).get("deletionTimestamp")
                or vu.annots(pvc).get(vu.ANN_STORAGE_PROVISIONER) not in PROVISIONERS):
            self._forget_wait(namespace, name)
            return
        sc = vu.storage_class(self.service, vu.claim_class(pvc) or "")
        if sc is None or sc.get("provisioner") not in PROVISIONERS:
            return
        if not self._ours(pvc, sc):
            return
        pv_name = f"pvc-{vu.uid_of(pvc)}"
        if self.store.get(vu.PV_KEY, "", pv_name) is not None:
            self._forget_wait(namespace, name)
            return  # provisioned already: binding is the binder's job
        class_name = vu.name_of(sc)
        if vu.spec(pvc).get("selector") is not None:
            await self._failed(pvc, class_name, "claim Selector is not supported")
            return
        pool = select_pool(sc, self.store.iter_objects(HPP_KEY), self.data_dir)
        if isinstance(pool, str):
            await self._failed(pvc, class_name, pool)
            return
        try:
            source = resolve_source(self.service, pvc, sc)
        except SourceError as e:
            self._waiting.setdefault((namespace, e.kind, e.name), set()).add(name)
            await self._failed(pvc, class_name, str(e))
            return
        if source is not None and source.populator:
            await self.events.event(pvc, NORMAL, "Provisioning",
                                    "Assuming an external populator will provision the volume")
            return
        self._forget_wait(namespace, name)
        if source is not None and source.kind == "PersistentVolumeClaim":
            clones = self._cloning.setdefault((namespace, source.name), set())
            clones.add(name)
            try:
                await vu.add_finalizer(self.service, vu.info(self.service, "persistentvolumeclaims"), namespace,
                                       source.name, vu.CLONE_PROTECTION)
            except Exception:
                clones.discard(name)  # not started: it must not hold the source's protection
                raise
        await self.events.event(pvc, NORMAL, "Provisioning",
                                f'External provisioner is provisioning volume for claim "{namespace}/{name}"')
        self.start_job(key, self._provision(key, pvc, sc, pool, pv_name, source), f"provision:{namespace}/{name}")

    def _ours(self, pvc: Obj, sc: Obj) -> bool:
        """As HPP's ShouldProvision: late-bound claims only once scheduled to this node."""
        ann = vu.annots(pvc)
        if ann.get(hpp.ANN_PROVISION_ON_NODE) not in (None, self.node_name):
            return False
        if sc.get("volumeBindingMode") == vu.WAIT_FOR_FIRST_CONSUMER:
            return ann.get(vu.ANN_SELECTED_NODE) == self.node_name
        return True

    async def _failed(self, pvc: Obj, class_name: str, why: str) -> None:
        await self.events.event(pvc, WARNING, "ProvisioningFailed",
                                f'failed to provision volume with StorageClass "{class_name}": {why}')

    async def _provision(self, key: tuple[str, str, str], pvc: Obj, sc: Obj, pool: StoragePool, pv_name: str,
                         source: VolumeSource | None) -> None:
        _, namespace, name = key
        mode = vu.volume_mode(pvc)
        volume: hpp.Volume | None = None
        retry = False
        try:
            volume_name = pool.volume_name(name, pv_name)
            size = vu.request_bytes(pvc)
            volume = await asyncio.to_thread(hpp.create, pool, volume_name, mode, size)
            if source is not None:
                await asyncio.to_thread(copy_into, source, volume, mode)
            body = hpp.pv_body(pvc, sc, pool, volume, pv_name, self.node_name)
            try:
                await self.service.create(vu.info(self.service, "persistentvolumes"), "", body, WriteContext())
            except errors.APIError as e:
                if e.code != 409:
                    raise
            await self.events.event(pvc, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("provisioning %s/%s failed: %s", namespace, name, e)
            retry = True
            if volume is not None:
                await asyncio.to_thread(_discard, volume)
            await self._failed(pvc, vu.name_of(sc), str(e))
        finally:
            if source is not None and source.kind == "PersistentVolumeClaim":
                clones = self._cloning.get((namespace, source.name), set())
                clones.discard(name)
                if not clones:
                    self._cloning.pop((namespace, source.name), None)
                self.queue.add(("source", namespace, source.name))
        if retry:
            self._retry_at[key] = time.monotonic() + RETRY_SECONDS
            self.queue.add_after(key, RETRY_SECONDS)
        else:
            self._retry_at.pop(key, None)

    async def _unprotect(self, namespace: str, name: str) -> None:
        """Drop the cloning-protection finalizer once no clone of this claim is running."""
        if self._cloning.get((namespace, name)):
            return
        await self.service.remove_finalizer(vu.info(self.service, "persistentvolumeclaims"), namespace, name,
                                            vu.CLONE_PROTECTION)

    # ---- reclaiming ------------------------------------------------------------------------------

    async def _sync_volume(self, name: str) -> None:
        pv_info = vu.info(self.service, "persistentvolumes")
        pv = self.service.find(pv_info, "", name)
        if pv is None or vu.annots(pv).get(vu.ANN_PROVISIONED_BY) not in PROVISIONERS:
            return
        if name not in self._reattached and vu.status(pv).get("phase") in ("Bound", "Available", "Pending"):
            self._reattached.add(name)
            device = await asyncio.to_thread(hpp.reattach, pv)
            if device is not None and str(device) != str((vu.spec(pv).get("hostPath") or {}).get("path")):
                log.warning("volume %s is now on %s, not the PV's %s", name, device,
                            (vu.spec(pv).get("hostPath") or {}).get("path"))
        if vu.status(pv).get("phase") != "Released" or vu.spec(pv).get("persistentVolumeReclaimPolicy") != "Delete":
            return
        try:
            await asyncio.to_thread(hpp.remove, pv)
        except Exception as e:
            await self.events.event(pv, WARNING, "VolumeFailedDelete", str(e))
            raise
        try:
            await self.service.delete(pv_info, "", name, {"preconditions": {"uid": vu.uid_of(pv)}}, WriteContext())
        except errors.APIError as e:
            if e.code not in (404, 409):
                raise


def _discard(volume: hpp.Volume) -> None:
    if volume.data.exists() or volume.data.is_symlink():
        volumes.delete_volume(volume.data)


__all__ = ["Provisioner", "copy_into"]
