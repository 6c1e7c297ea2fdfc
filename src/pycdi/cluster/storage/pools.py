"""Storage pools of the embedded hostpath provisioner: the default pool DIR/volumes and HostPathProvisioner CRs.

Which pool a StorageClass provisions into, as the hostpath-provisioner (legacy and CSI) decides:
- the class parameter `storagePool` names a pool of a HostPathProvisioner CR's `spec.storagePools`
  (or `local`, the built-in default pool);
- without it, the CSI provisioner (`kubevirt.io.hostpath-provisioner`) uses the first pool of the CR, the legacy
  one (`kubevirt.io/hostpath-provisioner`) the CR's `spec.pathConfig`;
- with no CR at all, the built-in pool DIR/volumes (the default StorageClass `local`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEGACY_PROVISIONER = "kubevirt.io/hostpath-provisioner"
CSI_PROVISIONER = "kubevirt.io.hostpath-provisioner"
PROVISIONERS = frozenset({LEGACY_PROVISIONER, CSI_PROVISIONER})
BUILTIN_POOL = "local"
#: The name HPP gives the pool described by the legacy `spec.pathConfig`.
LEGACY_POOL = "legacy"
HPP_KEY = "hostpathprovisioner.kubevirt.io/hostpathprovisioners"
SNAPSHOTS_DIR = ".snapshots"


@dataclass(frozen=True)
class StoragePool:
    """A directory volumes are made in; `use_naming_prefix` puts the claim name before the PV name."""

    name: str
    path: Path
    use_naming_prefix: bool = False
    #: The HostPathProvisioner CR this pool comes from ("" for the built-in pool).
    owner: str = ""

    @property
    def snapshots(self) -> Path:
        return self.path / SNAPSHOTS_DIR

    def volume_name(self, pvc_name: str, pv_name: str) -> str:
        """HPP's directory name: `<pvc>-<pv>` with the naming prefix, else `<pv>`."""
        return f"{pvc_name}-{pv_name}" if self.use_naming_prefix else pv_name


def truthy(value: Any) -> bool:
    """`useNamingPrefix` is a bool in v1beta1 and a "true"/"false" string in v1alpha1."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def builtin_pool(data_dir: Path) -> StoragePool:
    return StoragePool(BUILTIN_POOL, data_dir / "volumes")


def pools_of(hpp: Mapping[str, Any]) -> list[StoragePool]:
    """The pools a HostPathProvisioner CR describes, `spec.storagePools` first, then `spec.pathConfig`."""
    owner = str((hpp.get("metadata") or {}).get("name") or "")
    spec = hpp.get("spec") or {}
    pools: list[StoragePool] = []
    for pool in spec.get("storagePools") or []:
        if isinstance(pool, dict) and pool.get("name") and pool.get("path"):
            pools.append(StoragePool(str(pool["name"]), Path(str(pool["path"])), False, owner))
    path_config = spec.get("pathConfig")
    if isinstance(path_config, dict) and path_config.get("path"):
        pools.append(StoragePool(LEGACY_POOL, Path(str(path_config["path"])),
                                 truthy(path_config.get("useNamingPrefix")), owner))
    return pools


def select_pool(storage_class: Mapping[str, Any], hpps: Iterable[Mapping[str, Any]],
                data_dir: Path) -> StoragePool | str:
    """The pool a class provisions into, or a message saying why there is none."""
    builtin = builtin_pool(data_dir)
    live = sorted((h for h in hpps if not (h.get("metadata") or {}).get("deletionTimestamp")),
                  key=lambda h: str((h.get("metadata") or {}).get("creationTimestamp") or ""))
    wanted = str((storage_class.get("parameters") or {}).get("storagePool") or "")
    if wanted:
        for hpp in live:
            for pool in pools_of(hpp):
                if pool.name == wanted:
                    return pool
        if wanted == BUILTIN_POOL:
            return builtin
        return f"storage pool {wanted} not found"
    csi = storage_class.get("provisioner") == CSI_PROVISIONER
    for hpp in live:
        pools = pools_of(hpp)
        legacy = [p for p in pools if p.name == LEGACY_POOL]
        named = [p for p in pools if p.name != LEGACY_POOL]
        if csi and named:
            return named[0]
        if legacy:
            return legacy[0]
        if named:
            return named[0]
    return builtin


def pool_of_path(path: Path, pools: Iterable[StoragePool]) -> StoragePool | None:
    """The pool a volume path lives in (for snapshots of a volume)."""
    for pool in pools:
        try:
            path.relative_to(pool.path)
        except ValueError:
            continue
        return pool
    return None
