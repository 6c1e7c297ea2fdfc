"""The size of a `storage` clone DataVolume given no size (upstream's detectCloneSize and size-detection pod).

A Block source, or one not holding a kubevirt disk image, gives its capacity. A Filesystem kubevirt source holds
`disk.img`, whose virtual size only `qemu-img` knows: a pod `size-detection-<source uid>` reads it once the source
is populated, and the answer is cached on the source claim (`cdi.Kubervirt.io/virtualSize`, valid while its
capacity is `cdi.Kubervirt.io/sourceCapacity`). The size is then grown by the target's filesystem overhead. A target
smaller than the source's capacity after that is a "permissive" clone (`cdi.kubevirt.io/permissiveClone`): the
later comparisons of requests would refuse what fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...api.quantity import QuantityError, quantity_bytes
from ...api.sizes import required_space
from ..clone import common as cm

Obj = dict[str, Any]
CONTAINER = "size-detection-volume"
IMAGE_PATH = "/data/disk.img"


@dataclass(frozen=True)
class SizeDecision:
    """`done`: the spec may be used (its request possibly filled in); else wait (a pod runs, or the source is
    not ready). `permissive`: annotate the DataVolume so."""

    done: bool
    request: int | None = None
    permissive: bool = False


def pod_name(source: Obj) -> str:
    return f"{cl.SIZE_DETECTION_PREFIX}-{cm.uid_of(source)}"


def cached_size(source: Obj) -> int | None:
    """getSizeFromAnnotations: the virtual size measured while the source had its current capacity."""
    ann = cm.annots(source)
    virtual, capacity = ann.get(c.ANN_VIRTUAL_IMAGE_SIZE), ann.get(c.ANN_SOURCE_CAPACITY)
    current = (cm.status(source).get("capacity") or {}).get("storage")
    if virtual is None or capacity is None or current is None:
        return None
    try:
        if quantity_bytes(capacity) != quantity_bytes(current):
            return None
        return int(virtual)
    except (QuantityError, ValueError):
        return None


def needs_measure(spec: Obj, source: Obj) -> bool:
    """Whether detectCloneSize has anything to do for this target PVC spec and source."""
    size_required = not cm.request_bytes({"spec": spec})
    target_block = spec.get("volumeMode") == cm.BLOCK
    return size_required or (target_block and _fs_kubevirt(source))


def _fs_kubevirt(source: Obj) -> bool:
    return cm.volume_mode(source) == cm.FILESYSTEM and \
        cm.annots(source).get(c.ANN_CONTENT_TYPE) == c.ContentType.KUBEVIRT.value


def decide(spec: Obj, source: Obj, virtual_size: int | None, overhead: float) -> SizeDecision:
    """The request to use, from the source's capacity or the image's virtual size (`virtual_size`, for a
    Filesystem kubevirt source: None until measured)."""
    requested = cm.request_bytes({"spec": spec})
    size_required = not requested
    capacity = cm.capacity_bytes(source) or 0
    if _fs_kubevirt(source):
        if virtual_size is None:
            return SizeDecision(False)
        target = virtual_size
    else:
        target = capacity
    permissive = capacity > target if size_required else (requested or 0) >= target
    if not size_required:
        return SizeDecision(True, None, permissive)
    if spec.get("volumeMode", cm.FILESYSTEM) != cm.BLOCK:
        target = required_space(overhead, target)
    return SizeDecision(True, target, permissive)


def detection_pod(source: Obj, dv: Obj, image: str, config: Obj | None) -> Obj:
    """`size-detection-<source uid>` beside the source, reading it read-only; owned by the DataVolume when beside
    it too, else naming it in annotations (ownerReferences cannot cross namespaces)."""
    container: Obj = {"name": CONTAINER, "image": image, "command": ["pycdi", "cloner", "size", "--image-path",
                                                                       IMAGE_PATH],
                      "volumeMounts": [{"name": "cdi-data-vol", "mountPath": "/data", "readOnly": True}],
                      "terminationMessagePolicy": "File"}
    resources = cm.status(config).get("defaultPodResourceRequirements")
    if resources:
        container["resources"] = resources
    meta: Obj = {"name": pod_name(source), "namespace": cm.namespace_of(source),
                 "labels": {cm.CDI_LABEL[0]: cm.CDI_LABEL[1], "cdi.kubevirt.io": "importer"},
                 "annotations": {c.ANN_CREATED_BY: "yes"}}
    if cm.namespace_of(source) == cm.namespace_of(dv):
        meta["ownerReferences"] = [{"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                                    "name": cm.name_of(dv), "uid": cm.uid_of(dv), "controller": True,
                                    "blockOwnerDeletion": True}]
    else:
        meta["annotations"][cl.ANN_OWNED_BY_DATA_VOLUME] = f"{cm.namespace_of(dv)}/{cm.name_of(dv)}"
        meta["annotations"][c.ANN_OWNER_UID] = cm.uid_of(dv)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container], "restartPolicy": "Never",
                     "volumes": [{"name": "cdi-data-vol", "persistentVolumeClaim": {
                         "claimName": cm.name_of(source), "readOnly": True}}]}}


def pod_result(pod: Obj) -> tuple[int | None, str]:
    """(virtual size, "") once the pod succeeded, (None, reason) when it failed, (None, "") while it runs."""
    phase = cm.status(pod).get("phase")
    statuses = cm.status(pod).get("containerStatuses") or []
    terminated = ((statuses[0] if statuses else {}).get("state") or {}).get("terminated") or {}
    if phase == "Succeeded":
        try:
            return int(str(terminated.get("message") or "").strip()), ""
        except ValueError:
            return None, "ErrBadTermFile"
    if phase == "Failed":
        return None, "ErrInvalidFile" if terminated.get("exitCode") == 1 else "ErrUnknown"
    return None, ""
