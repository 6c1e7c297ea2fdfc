"""Clones: the clone populator (VolumeCloneSource targets: csi-clone, snapshot, host-assisted, then a PV rebind)
and the host-assisted clone controller (claims filled by a source and a target worker)."""

from ...api.clonetoken import CloneTokens
from ..runtime import Manager
from . import hostclone, populator
from .hostclone import HostCloneOptions
from .planner import Choice, CloneValidationError, Inputs, choose

__all__ = ["Choice", "CloneValidationError", "HostCloneOptions", "Inputs", "add_to_manager", "choose"]


def add_to_manager(manager: Manager, tokens: CloneTokens | None, options: HostCloneOptions) -> None:
    """Both clone controllers on the manager."""
    populator.add_to_manager(manager, tokens, options.pod.image)
    hostclone.add_to_manager(manager, tokens, options)
