"""Which way to clone a PVC (upstream's `computeStrategyForSourcePVC`), decided from what the caches hold.

In order: CDI's `cloneStrategyOverride`, else the target class's StorageProfile `status.cloneStrategy`, else
`snapshot`. `snapshot` needs a VolumeSnapshotClass of the claims' common driver; `snapshot` and `csi-clone` need a
common driver, equal volume modes, and (to grow) a class allowing expansion. Each unmet condition falls back to
`copy` (host-assisted) with upstream's reason, recorded as a Warning event and `cdi.kubevirt.io/cloneFallbackReason`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...api import clone as cl
from ...api import constants as c
from . import common as cm

Obj = cm.Obj
COPY, SNAPSHOT, CSI_CLONE = c.CloneStrategy.COPY.value, c.CloneStrategy.SNAPSHOT.value, c.CloneStrategy.CSI_CLONE.value
STRATEGIES = (COPY, SNAPSHOT, CSI_CLONE)


class CloneValidationError(Exception):
    """The clone cannot be done as asked (the target is smaller than the source): upstream's CloneValidationFailed."""


@dataclass
class Inputs:
    """What choosing reads: the two claims and the cluster's storage objects."""

    source: Obj
    target: Obj
    classes: dict[str, Obj] = field(default_factory=dict)
    profiles: dict[str, Obj] = field(default_factory=dict)
    snapshot_classes: list[Obj] = field(default_factory=list)
    volume: Callable[[str], Obj | None] = lambda _name: None
    #: CDI `spec.cloneStrategyOverride` ("" when none).
    override: str = ""


@dataclass(frozen=True)
class Choice:
    strategy: str
    #: (reason, message) when the wanted strategy was not possible and `copy` is used instead.
    fallback: tuple[str, str] | None = None
    snapshot_class: str = ""


def storage_class(claim: Obj, inputs: Inputs) -> Obj | None:
    name = cm.spec(claim).get("storageClassName")
    return inputs.classes.get(str(name)) if name else None


def driver(claim: Obj, inputs: Inputs) -> str | None:
    """GetDriverFromVolume, else the class's provisioner."""
    pv_name = cm.spec(claim).get("volumeName")
    pv = inputs.volume(str(pv_name)) if pv_name else None
    csi = cm.spec(pv).get("csi") if pv is not None else None
    if isinstance(csi, dict) and csi.get("driver"):
        return str(csi["driver"])
    sc = storage_class(claim, inputs)
    return str(sc.get("provisioner") or "") if sc is not None else None


def common_driver(inputs: Inputs, *claims: Obj) -> str | None:
    found: str | None = None
    for claim in claims:
        name = driver(claim, inputs)
        if name is None:
            return None
        if found is None:
            found = name
        elif found != name:
            return None
    return found


def snapshot_class(inputs: Inputs, *claims: Obj) -> str:
    """GetCompatibleVolumeSnapshotClass: the profiles' shared snapshot class of the common driver, else that
    driver's default class, else its first by name; "" when there is none."""
    name = common_driver(inputs, *claims)
    if name is None:
        return ""
    named: set[str] = set()
    for claim in claims:
        class_name = cm.spec(claim).get("storageClassName")
        profile = inputs.profiles.get(str(class_name)) if class_name else None
        named.add(str(cm.status(profile).get("snapshotClass") or ""))
    if len(named) == 1 and "" not in named:
        wanted = named.pop()
        vsc = next((v for v in inputs.snapshot_classes if cm.name_of(v) == wanted), None)
        return wanted if vsc is not None and vsc.get("driver") == name else ""
    candidates = sorted((v for v in inputs.snapshot_classes if v.get("driver") == name), key=cm.name_of)
    for vsc in candidates:
        if cm.annots(vsc).get(c.ANN_DEFAULT_SNAPSHOT_CLASS) == "true":
            return cm.name_of(vsc)
    return cm.name_of(candidates[0]) if candidates else ""


def validate_size(inputs: Inputs) -> None:
    """ValidateRequestedCloneSize (skipped for `cdi.kubevirt.io/permissiveClone` targets)."""
    if c.ANN_PERMISSIVE_CLONE in cm.annots(inputs.target):
        return
    source, target = cm.request_bytes(inputs.source), cm.request_bytes(inputs.target)
    if source is None or target is None:
        raise CloneValidationError("source/target missing storage resource requests")
    if source > target:
        raise CloneValidationError(f"target resources requests storage size is smaller than the source "
                                   f"{target} < {source}")


def wanted_strategy(inputs: Inputs) -> str:
    if inputs.override in STRATEGIES:
        return inputs.override
    class_name = cm.spec(inputs.target).get("storageClassName")
    profile = inputs.profiles.get(str(class_name)) if class_name else None
    strategy = str(cm.status(profile).get("cloneStrategy") or "")
    return strategy if strategy in STRATEGIES else SNAPSHOT


def choose(inputs: Inputs) -> Choice:
    """The strategy for cloning `inputs.source` into `inputs.target`; raises CloneValidationError."""
    validate_size(inputs)
    strategy = wanted_strategy(inputs)
    vsc = ""
    if strategy == SNAPSHOT:
        vsc = snapshot_class(inputs, inputs.source, inputs.target)
        if not vsc:
            return Choice(COPY, cl.NO_VOLUME_SNAPSHOT_CLASS)
    if strategy == COPY:
        return Choice(COPY)
    if common_driver(inputs, inputs.source, inputs.target) is None:
        return Choice(COPY, cl.INCOMPATIBLE_PROVISIONERS)
    if cm.volume_mode(inputs.source) != cm.volume_mode(inputs.target):
        return Choice(COPY, cl.INCOMPATIBLE_VOLUME_MODES)
    sc = storage_class(inputs.target, inputs)
    capacity, request = cm.capacity_bytes(inputs.source), cm.request_bytes(inputs.target)
    if capacity is None or request is None:
        raise CloneValidationError("source/target size info missing")
    if capacity < request and not (sc or {}).get("allowVolumeExpansion"):
        return Choice(COPY, cl.NO_VOLUME_EXPANSION)
    return Choice(strategy, None, vsc)
