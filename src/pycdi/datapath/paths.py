"""Container paths to host paths: the node agent passes the pod's mounts as env `PYCDI_PATH_MAP`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

PATH_MAP_ENV = "PYCDI_PATH_MAP"


def path_map(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The {container path: host path} map from the environment (empty when unset or malformed)."""
    raw = (environ if environ is not None else os.environ).get(PATH_MAP_ENV, "")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def resolve(container_path: str, mapping: Mapping[str, str] | None = None) -> Path:
    """The host path behind `container_path`: the longest mount that contains it, else the path itself.

    A path inside a mounted directory (`/data/disk.img` under a `/data` mount) maps below the mount's
    host directory, as a bind mount would show it; with no map at all (a worker run by hand) it is identity.
    """
    table = path_map() if mapping is None else mapping
    wanted = PurePosixPath(os.path.normpath(container_path)) if container_path else PurePosixPath(".")
    best: tuple[int, Path] | None = None
    for mount, host in table.items():
        mount_path = PurePosixPath(os.path.normpath(mount))
        if wanted == mount_path:
            rest: PurePosixPath | None = PurePosixPath()
        else:
            try:
                rest = wanted.relative_to(mount_path)
            except ValueError:
                rest = None
        if rest is None:
            continue
        depth = len(mount_path.parts)
        if best is None or depth > best[0]:
            target = Path(host) / rest if rest.parts else Path(host)
            best = (depth, target)
    return best[1] if best is not None else Path(container_path)
