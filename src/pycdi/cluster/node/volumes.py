"""A pod's volumes on this machine: claims resolved to their PV's host path, small volumes materialised."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .env import ConfigError, field_value

Obj = dict[str, Any]
#: (plural, namespace, name) -> the stored object or None; plural is one of persistentvolumeclaims,
#: persistentvolumes, configmaps, secrets.
ObjLookup = Callable[[str, str, str], Obj | None]

DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up yet (the kubelet's FailedMount): the pod waits in ContainerCreating."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes refer to, in order."""
    names: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim not in names:
            names.append(str(claim))
    return names


def unbound_claims(pod: Obj, lookup: ObjLookup) -> list[str]:
    """The pod's claims that are missing or not Bound yet (the kubelet waits for all of them)."""
    namespace = str(pod["metadata"].get("namespace") or "")
    missing: list[str] = []
    for name in claim_names(pod):
        pvc = lookup("persistentvolumeclaims", namespace, name)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound" or not (pvc.get("spec") or {}).get(
                "volumeName"):
            missing.append(name)
    return missing


def pv_host_path(pv: Obj) -> Path | None:
    """Where a PV's data lives here: `spec.hostPath.path` or `spec.local.path`."""
    spec = pv.get("spec") or {}
    for source in ("hostPath", "local"):
        path = (spec.get(source) or {}).get("path")
        if path:
            return Path(str(path))
    return None


def _write_files(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Replace the directory's content with these files (kubelet writes projected volumes atomically;
    the pod's processes only start after this, so a plain rewrite is enough here)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for rel, (data, mode) in files.items():
        path = target / rel
        if not path.resolve().is_relative_to(target.resolve()):
            continue  # validation forbids `..`; never write outside the volume anyway
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def _key_files(kind: str, obj: Obj | None, source: Obj, volume: str, default_mode: int) -> dict[str, tuple[bytes, int]]:
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(volume, f'{kind.lower()} "{source.get("name") or source.get("secretName")}" not found')
    data: dict[str, bytes] = {}
    for k, v in (obj.get("data") or {}).items():
        data[k] = base64.b64decode(v) if kind == "Secret" else str(v).encode()
    for k, v in (obj.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    items = source.get("items")
    files: dict[str, tuple[bytes, int]] = {}
    if items:
        for item in items:
            key = str(item.get("key") or "")
            if key not in data:
                if source.get("optional"):
                    continue
                raise VolumeError(volume, f"configmap references non-existent config key: {key}"
                                  if kind == "ConfigMap" else f"references non-existent secret key: {key}")
            files[str(item.get("path") or key)] = (data[key], int(item.get("mode") or default_mode))
    else:
        files = {k: (v, default_mode) for k, v in data.items()}
    return files


def _downward_files(pod: Obj, items: list[Obj], volume: str, default_mode: int) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        ref = item.get("fieldRef") or {}
        if not ref:
            continue  # resourceFieldRef files are rare in worker pods; left out
        try:
            value = field_value(pod, str(ref.get("fieldPath") or ""))
        except ConfigError as e:
            raise VolumeError(volume, str(e)) from None
        files[str(item.get("path"))] = (value.encode(), int(item.get("mode") or default_mode))
    return files


def prepare_volumes(pod: Obj, pod_dir: Path, lookup: ObjLookup) -> dict[str, Path]:
    """Set up every volume of the pod; returns {volume name: host path}. Raises VolumeError."""
    namespace = str(pod["metadata"].get("namespace") or "")
    base = pod_dir / "volumes"
    paths: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume.get("name") or "")
        here = base / name
        if "persistentVolumeClaim" in volume:
            claim = str(volume["persistentVolumeClaim"].get("claimName") or "")
            pvc = lookup("persistentvolumeclaims", namespace, claim)
            pv_name = ((pvc or {}).get("spec") or {}).get("volumeName")
            pv = lookup("persistentvolumes", "", str(pv_name)) if pv_name else None
            path = pv_host_path(pv) if pv else None
            backing = ((pv or {}).get("metadata") or {}).get("annotations", {}).get("pycdi.io/block-backing")
            if path is not None and not path.exists() and backing:
                path = Path(str(backing))  # the loop device is gone (reboot): the sparse file holds the data
            if path is None:
                raise VolumeError(name, f'persistentvolumeclaim "{claim}" is not bound to a local or hostPath volume')
            paths[name] = path
        elif "hostPath" in volume:
            src = volume["hostPath"]
            path = Path(str(src.get("path") or ""))
            if src.get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif src.get("type") == "FileOrCreate" and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            paths[name] = path
        elif "emptyDir" in volume:
            here.mkdir(parents=True, exist_ok=True)
            paths[name] = here
        elif "configMap" in volume or "secret" in volume:
            kind = "ConfigMap" if "configMap" in volume else "Secret"
            src = volume["configMap" if kind == "ConfigMap" else "secret"]
            obj_name = str(src.get("name") or src.get("secretName") or "")
            obj = lookup("configmaps" if kind == "ConfigMap" else "secrets", namespace, obj_name)
            mode = int(src.get("defaultMode") or DEFAULT_MODE)
            _write_files(here, _key_files(kind, obj, {**src, "name": obj_name}, name, mode))
            paths[name] = here
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            _write_files(here, _downward_files(pod, src.get("items") or [], name,
                                               int(src.get("defaultMode") or DEFAULT_MODE)))
            paths[name] = here
        elif "projected" in volume:
            src = volume["projected"]
            mode = int(src.get("defaultMode") or DEFAULT_MODE)
            files: dict[str, tuple[bytes, int]] = {}
            for source in src.get("sources") or []:
                for kind, field, plural in (("ConfigMap", "configMap", "configmaps"), ("Secret", "secret", "secrets")):
                    if isinstance(source.get(field), dict):
                        ref = source[field]
                        obj = lookup(plural, namespace, str(ref.get("name") or ""))
                        files.update(_key_files(kind, obj, ref, name, mode))
                if isinstance(source.get("downwardAPI"), dict):
                    files.update(_downward_files(pod, source["downwardAPI"].get("items") or [], name, mode))
            _write_files(here, files)
            paths[name] = here
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(name, f"volume type {'/'.join(kinds) or 'unknown'} is not supported by the embedded node")
    return paths


def container_path_map(container: Obj, volumes: dict[str, Path]) -> dict[str, str]:
    """{container path: host path} for the container's volumeMounts (with subPath) and volumeDevices."""
    mapping: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        host = volumes.get(str(mount.get("name") or ""))
        if host is None:
            continue
        sub = str(mount.get("subPath") or "")
        if sub:
            host = host / sub
            if not host.exists():
                host.mkdir(parents=True, exist_ok=True)  # the kubelet creates a missing subPath directory
        mapping[str(mount.get("mountPath"))] = os.fspath(host)
    for device in container.get("volumeDevices") or []:
        host = volumes.get(str(device.get("name") or ""))
        if host is not None:
            mapping[str(device.get("devicePath"))] = os.fspath(host)
    return mapping
