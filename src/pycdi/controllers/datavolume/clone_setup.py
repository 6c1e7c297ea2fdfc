"""Wiring of the DataVolume PVC-clone controller: its informers and what re-queues a clone DataVolume (its own
changes; its claim; its source claim coming, binding or being freed by a pod; its VolumeCloneSource; its
size-detection pod)."""

from __future__ import annotations

from typing import Any

from ...api import clone as cl
from ...api.clonetoken import CloneTokens
from ...kube.resources import (
    CDI_CONFIGS,
    CONFIG_MAPS,
    DATA_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    PODS,
    STORAGE_CLASSES,
    STORAGE_PROFILES,
    VOLUME_CLONE_SOURCES,
)
from ..clone import common as cm
from ..importpod.podspec import DEFAULT_IMAGE
from ..runtime import Controller, Manager, Request
from . import claim, clone_status, render
from .clone_controller import NAME, CloneReconciler, is_clone

SOURCE_INDEX = "pvc-clone-source"
Obj = dict[str, Any]


def add_to_manager(manager: Manager, tokens: CloneTokens | None, image: str = DEFAULT_IMAGE,
                   workers: int = 3) -> Controller:
    informers = {
        "dvs": manager.informer(DATA_VOLUMES), "pvcs": manager.informer(PERSISTENT_VOLUME_CLAIMS),
        "pods": manager.informer(PODS), "classes": manager.informer(STORAGE_CLASSES),
        "profiles": manager.informer(STORAGE_PROFILES), "configs": manager.informer(CDI_CONFIGS),
        "pvs": manager.informer(PERSISTENT_VOLUMES), "vcs": manager.informer(VOLUME_CLONE_SOURCES),
    }
    defaults = [manager.informer(CONFIG_MAPS, ns) for ns in render.DEFAULTS_NAMESPACES]
    reconciler = CloneReconciler(manager.client, informers, defaults, tokens, image)
    controller = Controller(NAME, reconciler, workers=workers)
    dvs = informers["dvs"]
    dvs.add_index(SOURCE_INDEX, lambda o: ["/".join(clone_status.clone_source(o))] if is_clone(o) else [])

    def own(dv: Obj) -> list[Request]:
        return [Request(cm.name_of(dv), cm.namespace_of(dv))] if is_clone(dv) else []

    def cloning(namespace: str, claim_name: str) -> list[Request]:
        return [Request(cm.name_of(d), cm.namespace_of(d)) for d in dvs.by_index(SOURCE_INDEX,
                                                                                 f"{namespace}/{claim_name}")]

    def claim_changed(pvc: Obj) -> list[Request]:
        out = cloning(cm.namespace_of(pvc), cm.name_of(pvc))  # a source came, bound, was populated...
        owner = claim.controller_of(pvc)
        if owner is not None and owner.get("kind") == "DataVolume":
            out.append(Request(str(owner.get("name")), cm.namespace_of(pvc)))
        if dvs.get(cm.name_of(pvc), cm.namespace_of(pvc)) is not None:
            out.append(Request(cm.name_of(pvc), cm.namespace_of(pvc)))
        return out

    def pod_changed(pod: Obj) -> list[Request]:
        out = [r for name, _ in cm.claim_names(pod) for r in cloning(cm.namespace_of(pod), name)]
        owner = cm.annots(pod).get(cl.ANN_OWNED_BY_DATA_VOLUME)
        if owner:
            ns, name = cm.split_ref(owner, cm.namespace_of(pod))
            out.append(Request(name, ns))
        ref = cm.controller_ref(pod)
        if ref is not None and ref.get("kind") == "DataVolume":
            out.append(Request(str(ref.get("name")), cm.namespace_of(pod)))
        return out

    def vcs_changed(vcs: Obj) -> list[Request]:
        owner = cm.annots(vcs).get(cl.ANN_OWNED_BY_DATA_VOLUME)
        if owner:
            ns, name = cm.split_ref(owner, cm.namespace_of(vcs))
            return [Request(name, ns)]
        ref = cm.controller_ref(vcs)
        return [Request(str(ref.get("name")), cm.namespace_of(vcs))] if ref else []

    controller.watch(dvs, own)
    controller.watch(informers["pvcs"], claim_changed)
    controller.watch(informers["pods"], pod_changed)
    controller.watch(informers["vcs"], vcs_changed)
    manager.add(controller)
    return controller
