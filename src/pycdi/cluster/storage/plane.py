"""The storage part of the embedded control plane: binder, protection, expansion, provisioner, snapshots, HPP.

It also registers the storage admission plug-ins kube-apiserver enables by default on the API server's chain:
DefaultStorageClass, StorageObjectInUseProtection and PersistentVolumeClaimResize.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..apiserver.service import ObjectService
from ..control import ControlPlane, expansion, pvbinder, pvprotection
from ..control.loops import Loop
from . import hostpathprovisioner as hpp
from .pools import PROVISIONERS
from .provisioner import Provisioner
from .snapshots import SnapshotLoop


class StoragePlane(ControlPlane):
    """Runs the storage loops with ControlPlane's supervision; `ready` per part for /readyz."""

    def __init__(self, service: ObjectService, data_dir: Path, node_name: str) -> None:
        # ControlPlane's own loops are not wanted here: set up only what its runner uses.
        self.service = service
        self.binder = pvbinder.PVBinder(service, node_name)
        self.protection = pvprotection.ProtectionLoop(service)
        self.expansion = expansion.ExpansionLoop(service, hpp.grow, PROVISIONERS)
        self.provisioner = Provisioner(service, data_dir, node_name)
        self.snapshots = SnapshotLoop(service, data_dir)
        self.hpp_status = hpp.HostPathProvisionerStatus(service)
        self.loops: tuple[Loop, ...] = (self.binder, self.protection, self.expansion, self.provisioner,
                                        self.snapshots, self.hpp_status)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._registered = False
        pvbinder.register_admission(service)
        pvprotection.register_admission(service)
        expansion.register_admission(service)

    def _running(self, loop: Loop) -> bool:
        task = self._tasks.get(loop.name)
        return task is not None and not task.done() and loop.synced

    def binder_ready(self) -> bool:
        return self._running(self.binder) and self._running(self.protection) and self._running(self.expansion)

    def provisioner_ready(self) -> bool:
        return self._running(self.provisioner) and self._running(self.snapshots) and self._running(self.hpp_status)
