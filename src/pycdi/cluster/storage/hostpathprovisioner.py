"""The embedded hostpath provisioner: volumes in storage pools, their PVs, and the HostPathProvisioner CR status.

As kubevirt/hostpath-provisioner: one directory per Filesystem volume (`<pvc>-<pv>` with the naming prefix, else
`<pv>`), a `hostPath` PV pinned to this node. Block volumes are sparse files named the same way, attached to a
loop device where this machine allows (root and /dev/loop-control); the PV's `hostPath.path` is then the device,
else the sparse file itself (annotations `pycdi.io/block-kind: loop|file`, `pycdi.io/block-backing`).

Capacity is the requested size: like HPP, nothing enforces it for Filesystem volumes (a directory can grow
until its filesystem is full); a Block volume's file is exactly that size.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..apiserver import errors
from ..apiserver.service import WriteContext, now_rfc3339
from ..apiserver.store import Event
from ..control import volumeutil as vu
from ..control.loops import Loop
from . import volumes
from .pools import HPP_KEY, StoragePool, pools_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ANN_BLOCK_BACKING = "pycdi.io/block-backing"
ANN_BLOCK_KIND = "pycdi.io/block-kind"
ANN_POOL = "pycdi.io/storage-pool"
ANN_IDENTITY = "hostPathProvisionerIdentity"
ANN_PROVISION_ON_NODE = "kubevirt.io/provisionOnNode"


@dataclass(frozen=True)
class Volume:
    """What a provisioned volume is on this machine: `path` goes to the PV, `data` is where its bytes live."""

    path: Path
    data: Path
    kind: Literal["dir", "loop", "file"]


def create(pool: StoragePool, name: str, mode: str, size: int) -> Volume:
    """Make a fresh volume (whatever a crashed earlier attempt left under that name is removed first)."""
    target = pool.path / name
    pool.path.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        volumes.delete_volume(target)
    if mode == "Block":
        device = volumes.create_block_volume(target, size)
        return Volume(device.path, device.backing, device.kind)
    volumes.create_directory_volume(target)
    return Volume(target, target, "dir")


def volume_of(pv: Obj) -> Volume | None:
    """The volume a PV stands for, from its source and our annotations (None: not a local volume)."""
    source = vu.spec(pv).get("hostPath") or vu.spec(pv).get("local")
    if not isinstance(source, dict) or not source.get("path"):
        return None
    path = Path(str(source["path"]))
    ann = vu.annots(pv)
    if vu.volume_mode(pv) == "Block":
        backing = Path(ann[ANN_BLOCK_BACKING]) if ann.get(ANN_BLOCK_BACKING) else path
        kind: Literal["dir", "loop", "file"] = "loop" if ann.get(ANN_BLOCK_KIND) == "loop" else "file"
        return Volume(path, backing, kind)
    return Volume(path, path, "dir")


def remove(pv: Obj) -> None:
    """Delete a provisioned volume's data (and detach its loop device)."""
    volume = volume_of(pv)
    if volume is not None and (volume.data.exists() or volume.data.is_symlink()):
        volumes.delete_volume(volume.data)


def reattach(pv: Obj) -> Path | None:
    """After a restart: make sure a loop-backed Block volume has its device again; the device path if so."""
    volume = volume_of(pv)
    if volume is None or volume.kind != "loop" or not volume.data.exists():
        return None
    return volumes.attach_block_volume(volume.data).path


def pv_body(pvc: Obj, sc: Obj, pool: StoragePool, volume: Volume, pv_name: str, node: str) -> Obj:
    """The PV for a provisioned volume, bound in advance to its claim (the binder completes the binding)."""
    provisioner = str(sc.get("provisioner") or "")
    ann = {vu.ANN_PROVISIONED_BY: provisioner, ANN_IDENTITY: node, ANN_PROVISION_ON_NODE: node,
           ANN_POOL: pool.name}
    mode = vu.volume_mode(pvc)
    if mode == "Block":
        ann[ANN_BLOCK_BACKING] = str(volume.data)
        ann[ANN_BLOCK_KIND] = volume.kind
    host_path: Obj = {"path": str(volume.path), "type": "" if mode == "Block" else "DirectoryOrCreate"}
    if mode == "Block":
        host_path["type"] = "BlockDevice" if volume.kind == "loop" else "File"
    meta = vu.meta(pvc)
    body: Obj = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": ann},
        "spec": {
            "capacity": {"storage": vu.request_quantity(pvc)},
            "accessModes": list(vu.spec(pvc).get("accessModes") or ["ReadWriteOnce"]),
            "volumeMode": mode,
            "storageClassName": vu.name_of(sc),
            "persistentVolumeReclaimPolicy": str(sc.get("reclaimPolicy") or "Delete"),
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace"),
                         "name": meta.get("name"), "uid": meta.get("uid"), "apiVersion": "v1",
                         "resourceVersion": meta.get("resourceVersion")},
            "hostPath": host_path,
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        },
    }
    if sc.get("mountOptions"):
        body["spec"]["mountOptions"] = list(sc["mountOptions"])
    return body


# ---- the HostPathProvisioner CR ----------------------------------------------------------------------

def _condition(type_: str, status: bool, reason: str, message: str, old: list[Obj]) -> Obj:
    value = "True" if status else "False"
    previous = next((c for c in old if c.get("type") == type_), None)
    now = now_rfc3339()
    since = now if previous is None or previous.get("status") != value else previous.get("lastTransitionTime", now)
    return {"type": type_, "status": value, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": since}


def check_pool(pool: StoragePool) -> str:
    """'' when the pool's directory exists (made if missing) and is writable; else why not."""
    try:
        pool.path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create {pool.path}: {e.strerror}"
    if not os.access(pool.path, os.W_OK | os.X_OK):
        return f"{pool.path} is not writable"
    return ""


class HostPathProvisionerStatus(Loop):
    """Reports each HostPathProvisioner CR as the HPP operator does: Available/Progressing/Degraded."""

    name = "hostpathprovisioner-status"
    resync_seconds = 60.0

    def on_event(self, event: Event) -> None:
        if event.key == HPP_KEY and event.type != "DELETED":
            self.queue.add(event.name)

    def initial_keys(self) -> Iterable[Hashable]:
        return [vu.name_of(obj) for obj in self.store.iter_objects(HPP_KEY)]

    async def reconcile(self, key: Hashable) -> None:
        info = self.catalog.preferred("hostpathprovisioner.kubevirt.io", "hostpathprovisioners")
        if info is None:
            return
        obj = self.service.find(info, "", str(key))
        if obj is None or vu.meta(obj).get("deletionTimestamp"):
            return
        if isinstance((vu.spec(obj).get("pathConfig") or {}).get("useNamingPrefix"), str):
            # Written through v1alpha1 (a string flag): only that version's schema accepts it back.
            legacy = self.catalog.by_kind("hostpathprovisioner.kubevirt.io/v1alpha1", "HostPathProvisioner")
            if legacy is not None:
                info = legacy
                obj = self.service.present(info, obj)
        pools = pools_of(obj)
        problems = [p for p in (check_pool(pool) for pool in pools) if p]
        if not pools:
            problems.append("spec.pathConfig or spec.storagePools must name a directory")
        old = list(vu.status(obj).get("conditions") or [])
        if problems:
            message = "; ".join(problems)
            conditions = [_condition("Available", False, "Degraded", message, old),
                          _condition("Progressing", False, "Degraded", message, old),
                          _condition("Degraded", True, "Degraded", message, old)]
        else:
            conditions = [_condition("Available", True, "Complete", "Application Available", old),
                          _condition("Progressing", False, "Complete", "Application Available", old),
                          _condition("Degraded", False, "Complete", "Application Available", old)]
        new_status = copy.deepcopy(vu.status(obj))
        version = _version()
        new_status.update({"conditions": conditions, "observedVersion": version, "operatorVersion": version,
                           "targetVersion": version})
        if info.version == "v1beta1":
            new_status["storagePoolStatuses"] = [
                {"name": pool.name, "phase": "Ready" if not check_pool(pool) else "Preparing",
                 "currentReady": 0 if check_pool(pool) else 1, "desiredReady": 1} for pool in pools]
        if _same(new_status, vu.status(obj)):
            return
        obj["status"] = new_status
        subresource = "status" if "status" in info.subresources else ""
        try:
            await self.service.update(info, "", str(key), obj, WriteContext(), subresource, require_rv=True)
        except errors.APIError as e:
            if e.code != 404:
                raise


def _same(a: Obj, b: Obj) -> bool:
    def strip(s: Obj) -> Obj:
        return {**s, "conditions": [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                                    for c in s.get("conditions") or []]}
    return strip(a) == strip(b)


def _version() -> str:
    try:
        from importlib.metadata import version
        return f"v{version('pycdi')}"
    except Exception:  # not installed as a distribution (running from a source tree)
        return "v0.0.0"


def grow(pv: Obj, size: int) -> None:
    """Expand a provisioned volume to `size` bytes (a directory has nothing to grow)."""
    volume = volume_of(pv)
    if volume is None or volume.kind == "dir":
        return
    volumes.resize_block_volume(volumes.BlockDevice(volume.path, volume.data, volume.kind), size)
