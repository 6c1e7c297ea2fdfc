"""Idempotent seeding of a fresh or restarted cluster: system namespaces, default RBAC, CRDs."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from .loops import builtin

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease", "cdi")
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
#: The parts of an RBAC object that bootstrap reconciles (kube's RBAC reconciler looks at the same ones).
RBAC_FIELDS = ("rules", "aggregationRule", "roleRef", "subjects")


async def _create_if_missing(service: ObjectService, group: str, plural: str, body: dict[str, Any]) -> bool:
    """Create a cluster-scoped object unless one of that name exists; True if created."""
    info = builtin(service, group, plural)
    if service.find(info, "", body["metadata"]["name"]) is not None:
        return False
    try:
        await service.create(info, "", copy.deepcopy(body), WriteContext())
    except errors.APIError as e:
        if e.code != 409:
            raise
        return False
    return True


def _rbac_fields(obj: dict[str, Any]) -> tuple[str, ...]:
    # The aggregation loop owns the rules of aggregating roles: bootstrap compares only their selectors.
    return tuple(k for k in RBAC_FIELDS if not (k == "rules" and obj.get("aggregationRule")))


def _rbac_differs(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if any(stored.get(k) != wanted.get(k) for k in _rbac_fields(wanted)):
        return True
    stored_meta, wanted_meta = stored.get("metadata", {}), wanted.get("metadata", {})
    return any((stored_meta.get(k) or {}).get(label) != value
               for k in ("labels", "annotations") for label, value in (wanted_meta.get(k) or {}).items())


async def _reconcile_rbac(service: ObjectService, plural: str, wanted: dict[str, Any]) -> None:
    if await _create_if_missing(service, "rbac.authorization.k8s.io", plural, wanted):
        return
    info = builtin(service, "rbac.authorization.k8s.io", plural)
    name = wanted["metadata"]["name"]
    stored = service.find(info, "", name)
    if stored is None or not _rbac_differs(stored, wanted):
        return
    # As kube-apiserver's RBAC bootstrap: an administrator opts out of updates with autoupdate "false".
    if (stored["metadata"].get("annotations") or {}).get(AUTOUPDATE) != "true":
        return
    updated = copy.deepcopy(stored)
    for k in _rbac_fields(wanted):
        if k in wanted:
            updated[k] = copy.deepcopy(wanted[k])
        else:
            updated.pop(k, None)
    for k in ("labels", "annotations"):
        if wanted["metadata"].get(k):
            updated["metadata"].setdefault(k, {}).update(wanted["metadata"][k])
    await service.update(info, "", name, updated, WriteContext(), require_rv=True)
    log.info("bootstrap: updated %s %s", plural, name)


async def _reconcile_crd(service: ObjectService, wanted: dict[str, Any]) -> None:
    if await _create_if_missing(service, "apiextensions.k8s.io", "customresourcedefinitions", wanted):
        return
    info = builtin(service, "apiextensions.k8s.io", "customresourcedefinitions")
    name = wanted["metadata"]["name"]
    stored = service.find(info, "", name)
    if stored is None or stored.get("spec") == wanted.get("spec"):
        return
    updated = copy.deepcopy(stored)
    updated["spec"] = copy.deepcopy(wanted["spec"])
    await service.update(info, "", name, updated, WriteContext(), require_rv=True)
    log.info("bootstrap: updated CRD %s", name)


#: The default StorageClass (DESIGN §5): the embedded hostpath provisioner's built-in pool DIR/volumes. That
#: provisioner clones claims itself (reflink, else sparse copy), which CDI cannot know from the provisioner's
#: name: the class says so with CDI's own annotation, so its StorageProfile advises `csi-clone`.
DEFAULT_STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true",
                                                  "cdi.kubevirt.io/clone-strategy": "csi-clone"}},
    "provisioner": "kubevirt.io/hostpath-provisioner",
    "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "allowVolumeExpansion": True,
}
#: Its snapshots: the driver is named as the class's provisioner, as CSI drivers and their classes match (CDI pairs
#: a class with its snapshot class by that name).
DEFAULT_SNAPSHOT_CLASS: dict[str, Any] = {
    "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
    "metadata": {"name": "local-snapshots",
                 "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
    "driver": "kubevirt.io/hostpath-provisioner", "deletionPolicy": "Delete",
}

#: Its StorageProfile, made with the class: unlike upstream's hostpath provisioner (Filesystem only), this one also
#: provisions Block volumes (loop devices), so the profile says so and `storage: {volumeMode: Block}` just works.
#: It is the profile's spec, as an administrator would write it; the CDI controller fills its status.
DEFAULT_STORAGE_PROFILE: dict[str, Any] = {
    "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile",
    "metadata": {"name": "local"},
    "spec": {"claimPropertySets": [{"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                                   {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block"}]},
}


async def _seed_storage_classes(service: ObjectService) -> None:
    """Only on a fresh cluster (no StorageClass at all), so an administrator's deletions stick."""
    if any(True for _ in service.store.iter_objects("storage.k8s.io/storageclasses")):
        return
    await _create_if_missing(service, "storage.k8s.io", "storageclasses", DEFAULT_STORAGE_CLASS)
    if service.catalog.preferred("snapshot.storage.k8s.io", "volumesnapshotclasses") is not None:
        await _create_if_missing(service, "snapshot.storage.k8s.io", "volumesnapshotclasses", DEFAULT_SNAPSHOT_CLASS)
    if service.catalog.preferred("cdi.kubevirt.io", "storageprofiles") is not None:
        await _create_if_missing(service, "cdi.kubevirt.io", "storageprofiles", DEFAULT_STORAGE_PROFILE)


async def bootstrap(service: ObjectService, crds: list[dict[str, Any]], cluster_roles: list[dict[str, Any]],
                    cluster_role_bindings: list[dict[str, Any]]) -> None:
    """Create what a cluster starts with; safe to run on every start."""
    for ns in SYSTEM_NAMESPACES:
        await _create_if_missing(service, "", "namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for role in cluster_roles:
        await _reconcile_rbac(service, "clusterroles", role)
    for binding in cluster_role_bindings:
        await _reconcile_rbac(service, "clusterrolebindings", binding)
    for crd in crds:
        await _reconcile_crd(service, crd)
    await _seed_storage_classes(service)
