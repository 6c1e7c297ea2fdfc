"""The PVC spec a DataVolume asks for: `pvc` as given, or `storage` completed as upstream's renderPvcSpec.

Order for a `storage` DataVolume (upstream's, plus the legacy ConfigMap where upstream has nothing):
1. `contentType: archive` forces Filesystem (Block is refused).
2. The storage class: the one named; else the class annotated `storageclass.kubevirt.io/is-default-virt-class`
   (kubevirt content only); else the Kubernetes default class (newest first, then by name, as kube picks).
   A named class that does not exist: volume and access modes from an Available PV of that class name.
3. Missing access modes / volume mode from the StorageProfile's `status.claimPropertySets` (both missing: the
   first set; only the mode given: the first set of that mode; only access modes given: the first set sharing one).
4. Whatever the profile left open, from the `kubevirt-storage-class-defaults` ConfigMap (namespace `cdi`, else
   `openshift-cnv`): `<class>.accessMode` / `<class>.volumeMode`, then `accessMode` / `volumeMode`.
5. Kubernetes' defaults: volume mode Filesystem (left unset, the API server defaults it); access modes have no
   default, so a DataVolume still without them is not valid (upstream's ErrClaimNotValid).
6. Size: Filesystem requests grow by the CDIConfig filesystem overhead exactly as upstream's GetRequiredSpace
   (round up to 1 MiB, times 1 + overhead, ceiled); then the profile's `minimumSupportedPvcSize` floor.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...api import constants as c
from ...api.quantity import QuantityError, parse_quantity, quantity_bytes
from ...api.sizes import required_space

Obj = dict[str, Any]
MIB = 1 << 20
DEFAULTS_CONFIG_MAP = "kubevirt-storage-class-defaults"
DEFAULTS_NAMESPACES = ("cdi", "openshift-cnv")
FILESYSTEM = "Filesystem"
BLOCK = "Block"

MSG_NO_STORAGE_CLASS = "PVC spec is missing accessMode and no storageClass to choose profile"
MSG_ARCHIVE_BLOCK = "ContentType Archive cannot have block volumeMode"
MSG_MISSING_SIZE = "PVC Spec is not valid - missing storage size"
MSG_TOO_SMALL = "PVC Spec is not valid - storage size should be at least 1MiB"
MSG_NO_SPEC = "datavolume one of {pvc, storage} field is required"


class ClaimNotValid(Exception):
    """The DataVolume cannot be rendered into a PVC (upstream's ErrClaimNotValid); `event` is what upstream
    records as the Warning event when it differs from the error (the condition's message)."""

    def __init__(self, message: str, event: str | None = None, *, wait_for_class: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.event = event
        #: Upstream's ErrStorageClassNotFound: not retried, a class or profile appearing re-triggers it.
        self.wait_for_class = wait_for_class


@dataclass
class RenderContext:
    """What rendering reads from the cluster (the controller fills it from its caches)."""

    classes: list[Obj] = field(default_factory=list)
    profile: Callable[[str], Obj | None] = lambda _name: None
    #: The `kubevirt-storage-class-defaults` data, or {}.
    defaults: dict[str, str] = field(default_factory=dict)
    cdi_config: Obj | None = None
    volumes: list[Obj] = field(default_factory=list)


def content_type(dv: Obj) -> str:
    """GetContentType: archive, else kubevirt (also for unknown values)."""
    value = (dv.get("spec") or {}).get("contentType")
    return c.ContentType.ARCHIVE.value if value == c.ContentType.ARCHIVE else c.ContentType.KUBEVIRT.value


def _default_class(classes: list[Obj], annotation: str) -> Obj | None:
    marked = [sc for sc in classes if ((sc.get("metadata") or {}).get("annotations") or {}).get(annotation) == "true"]
    if not marked:
        return None
    # As kube: newest first, then by name (RFC 3339 timestamps of one format sort as text).
    marked.sort(key=lambda sc: sc["metadata"].get("name", ""))
    marked.sort(key=lambda sc: sc["metadata"].get("creationTimestamp", ""), reverse=True)
    return marked[0]


def storage_class(name: str | None, classes: list[Obj], content: str) -> Obj | None:
    """getStorageClassByName: the named class or None; with no name, the virt default then the kube default."""
    if name is not None:
        return next((sc for sc in classes if sc["metadata"]["name"] == name), None)
    if content == c.ContentType.KUBEVIRT:
        virt = _default_class(classes, c.ANN_DEFAULT_VIRT_STORAGE_CLASS)
        if virt is not None:
            return virt
    return _default_class(classes, c.ANN_DEFAULT_STORAGE_CLASS)


def filesystem_overhead(cdi_config: Obj | None, class_name: str | None, classes: list[Obj]) -> float:
    """GetFilesystemOverheadForStorageClass: per class from CDIConfig status, else global; "" class or no
    config: no overhead."""
    if class_name == "" or cdi_config is None:
        return 0.0
    overhead = (cdi_config.get("status") or {}).get("filesystemOverhead")
    if not overhead:
        return 0.0
    sc = storage_class(class_name, classes, c.ContentType.ARCHIVE) or storage_class(None, classes,
                                                                                    c.ContentType.ARCHIVE)
    value = overhead.get("global", "0")
    if sc is not None:
        value = (overhead.get("storageClass") or {}).get(sc["metadata"]["name"], value)
    try:
        return float(value)
    except ValueError:
        return 0.0


def preallocation(dv: Obj, cdi_config: Obj | None) -> bool:
    """GetPreallocation: the DataVolume's, else CDIConfig's status, else false."""
    wanted = (dv.get("spec") or {}).get("preallocation")
    if wanted is not None:
        return bool(wanted)
    return bool(((cdi_config or {}).get("status") or {}).get("preallocation", False))


def _claim_sets(profile: Obj | None) -> list[Obj]:
    return list(((profile or {}).get("status") or {}).get("claimPropertySets") or [])


def _defaults_for(defaults: dict[str, str], class_name: str, key: str) -> str | None:
    return defaults.get(f"{class_name}.{key}") or defaults.get(key) or None


def _modes_from_defaults(defaults: dict[str, str], class_name: str) -> list[str]:
    value = _defaults_for(defaults, class_name, "accessMode")
    return [m.strip() for m in value.split(",") if m.strip()] if value else []


def _from_available_pv(spec: Obj, volumes: list[Obj]) -> None:
    """renderPvcSpecFromAvailablePv: a named class that does not exist may still have static PVs."""
    name = spec.get("storageClassName")
    if name is None:
        return
    try:
        requested = quantity_bytes(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    except QuantityError:
        requested = 0
    for pv in volumes:
        pv_spec = pv.get("spec") or {}
        if ((pv.get("status") or {}).get("phase") != "Available" or pv_spec.get("storageClassName", "") != name
                or (pv.get("metadata") or {}).get("deletionTimestamp")):
            continue
        try:
            capacity = quantity_bytes((pv_spec.get("capacity") or {}).get("storage", "0"))
        except QuantityError:
            continue
        if capacity < requested:
            continue
        if spec.get("volumeMode") and spec["volumeMode"] != pv_spec.get("volumeMode", FILESYSTEM):
            continue
        if spec.get("accessModes") and not set(spec["accessModes"]) <= set(pv_spec.get("accessModes") or []):
            continue
        if pv_spec.get("volumeMode"):
            spec["volumeMode"] = pv_spec["volumeMode"]
        if not spec.get("accessModes"):
            spec["accessModes"] = list(pv_spec.get("accessModes") or [])
        return


def _render_modes_and_class(spec: Obj, content: str, ctx: RenderContext) -> None:
    if content == c.ContentType.ARCHIVE:
        if spec.get("volumeMode") == BLOCK:
            raise ClaimNotValid(MSG_ARCHIVE_BLOCK)
        spec["volumeMode"] = FILESYSTEM
    sc = storage_class(spec.get("storageClassName"), ctx.classes, content)
    if sc is None:
        _from_available_pv(spec, ctx.volumes)
        if not spec.get("accessModes"):
            raise ClaimNotValid(MSG_NO_STORAGE_CLASS, wait_for_class=True)
        return
    name = sc["metadata"]["name"]
    spec["storageClassName"] = name
    sets = _claim_sets(ctx.profile(name))
    mode = spec.get("volumeMode") or None
    access = list(spec.get("accessModes") or [])
    if mode is None and not access:
        if sets and sets[0].get("accessModes"):
            access, mode = list(sets[0]["accessModes"]), sets[0].get("volumeMode")
        else:
            access = _modes_from_defaults(ctx.defaults, name)
            if not access:
                raise ClaimNotValid(
                    f"no accessMode specified in StorageProfile {name}",
                    f"Spec is missing accessMode and volumeMode, cannot get access mode from StorageProfile {name}",
                    wait_for_class=True)
        mode = mode or _defaults_for(ctx.defaults, name, "volumeMode")
    elif not access:
        match = next((s for s in sets if s.get("volumeMode") == mode and s.get("accessModes")), None)
        access = list(match["accessModes"]) if match else _modes_from_defaults(ctx.defaults, name)
        if not access:
            raise ClaimNotValid(f"no matching accessMode specified in StorageProfile {name}",
                                f"Spec is missing accessMode and cannot get access mode from StorageProfile {name}",
                                wait_for_class=True)
    elif mode is None:
        match = next((s for s in sets if set(s.get("accessModes") or []) & set(access)), None)
        mode = match.get("volumeMode") if match else _defaults_for(ctx.defaults, name, "volumeMode")
    spec["accessModes"] = access
    if mode:
        spec["volumeMode"] = mode


def _render_size(spec: Obj, ctx: RenderContext, is_clone: bool) -> None:
    requests = (spec.setdefault("resources", {})).setdefault("requests", {})
    if "storage" not in requests:
        if not is_clone:
            raise ClaimNotValid(MSG_MISSING_SIZE)
        requests["storage"] = "0"
        return
    try:
        size = quantity_bytes(requests["storage"])
    except QuantityError as e:
        raise ClaimNotValid(f"PVC Spec is not valid - {e}") from None
    if size < MIB:
        raise ClaimNotValid(MSG_TOO_SMALL)
    if spec.get("volumeMode", FILESYSTEM) != BLOCK:
        overhead = filesystem_overhead(ctx.cdi_config, spec.get("storageClassName"), ctx.classes)
        size = required_space(overhead, size)
    wanted: str = str(size)
    class_name = spec.get("storageClassName")
    if class_name:
        minimum = (((ctx.profile(class_name) or {}).get("metadata") or {}).get("annotations") or {}).get(
            c.ANN_MINIMUM_SUPPORTED_PVC_SIZE)
        if minimum:
            try:
                if parse_quantity(minimum) > Decimal(size):
                    wanted = minimum
            except QuantityError:
                pass  # upstream logs and ignores a malformed floor
    requests["storage"] = wanted


def storage_as_pvc(storage: Obj) -> Obj:
    """copyStorageAsPvc: the StorageSpec fields a PVC spec has."""
    keys = ("accessModes", "selector", "resources", "volumeName", "storageClassName", "volumeMode", "dataSource",
            "dataSourceRef")
    return {k: copy.deepcopy(storage[k]) for k in keys if storage.get(k) is not None}


def render_pvc_spec(dv: Obj, ctx: RenderContext) -> Obj:
    """The spec of the PVC to create for `dv`; raises ClaimNotValid with upstream's messages."""
    spec = dv.get("spec") or {}
    if spec.get("pvc") is not None:
        return copy.deepcopy(spec["pvc"])
    if spec.get("storage") is None:
        raise ClaimNotValid(MSG_NO_SPEC)
    out = storage_as_pvc(spec["storage"])
    _render_modes_and_class(out, content_type(dv), ctx)
    source = spec.get("source") or {}
    _render_size(out, ctx, is_clone=source.get("pvc") is not None or source.get("snapshot") is not None)
    return out
