"""Choosing a clone strategy as upstream's planner does: override, profile, snapshot default, and each fallback."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.controllers.clone import planner
from pycdi.controllers.clone.planner import Choice, CloneValidationError, Inputs, choose

Obj = dict[str, Any]
HPP = "kubevirt.io/hostpath-provisioner"


def claim(name: str, size: str, *, mode: str = "Filesystem", klass: str = "local", capacity: str | None = None,
          **annotations: str) -> Obj:
    out: Obj = {"metadata": {"name": name, "namespace": "ns", "annotations": annotations},
                "spec": {"storageClassName": klass, "volumeMode": mode,
                         "resources": {"requests": {"storage": size}}}}
    if capacity:
        out["status"] = {"phase": "Bound", "capacity": {"storage": capacity}}
    return out


def inputs(source: Obj, target: Obj, *, strategy: str = "csi-clone", expansion: bool = True, override: str = "",
           snapshot_driver: str | None = HPP, provisioners: dict[str, str] | None = None) -> Inputs:
    provisioners = provisioners or {"local": HPP}
    classes = {n: {"metadata": {"name": n}, "provisioner": p, "allowVolumeExpansion": expansion}
               for n, p in provisioners.items()}
    profiles = {n: {"metadata": {"name": n}, "status": {"cloneStrategy": strategy}} for n in provisioners}
    vscs = [] if snapshot_driver is None else [{"metadata": {"name": "snaps", "annotations": {
        "snapshot.storage.kubernetes.io/is-default-class": "true"}}, "driver": snapshot_driver}]
    return Inputs(source, target, classes, profiles, vscs, override=override)


def test_profile_strategy_is_used() -> None:
    assert choose(inputs(claim("s", "1Gi", capacity="1Gi"), claim("t", "2Gi"))) == Choice("csi-clone")


def test_override_wins_over_the_profile() -> None:
    got = choose(inputs(claim("s", "1Gi", capacity="1Gi"), claim("t", "1Gi"), override="snapshot"))
    assert got == Choice("snapshot", None, "snaps")


def test_target_smaller_than_source_is_refused_unless_permissive() -> None:
    with pytest.raises(CloneValidationError, match=r"smaller than the source 536870912 < 1073741824"):
        choose(inputs(claim("s", "1Gi", capacity="1Gi"), claim("t", "512Mi")))
    permissive = claim("t", "512Mi", **{"cdi.kubevirt.io/permissiveClone": "true"})
    assert choose(inputs(claim("s", "1Gi", capacity="1Gi"), permissive)).strategy == "csi-clone"


@pytest.mark.parametrize(("case", "reason"), [
    ("modes", "IncompatibleVolumeModes"),
    ("expansion", "NoVolumeExpansion"),
    ("drivers", "IncompatibleProvisioners"),
    ("snapshot-class", "NoVolumeSnapshotClass"),
])
def test_fallbacks_to_copy(case: str, reason: str) -> None:
    source, target = claim("s", "1Gi", capacity="1Gi"), claim("t", "2Gi")
    kwargs: dict[str, Any] = {}
    if case == "modes":
        target = claim("t", "2Gi", mode="Block")
    elif case == "expansion":
        kwargs["expansion"] = False
    elif case == "drivers":
        target = claim("t", "2Gi", klass="other")
        kwargs["provisioners"] = {"local": HPP, "other": "rbd.csi.ceph.com"}
    else:
        kwargs.update(strategy="snapshot", snapshot_driver="other.driver")
    got = choose(inputs(source, target, **kwargs))
    assert got.strategy == "copy" and got.fallback is not None and got.fallback[0] == reason


def test_copy_asked_is_copy_without_fallback() -> None:
    assert choose(inputs(claim("s", "1Gi", capacity="1Gi"), claim("t", "1Gi", mode="Block"), strategy="copy")) == \
        Choice("copy")


def test_snapshot_class_named_by_both_profiles_must_have_the_driver() -> None:
    data = inputs(claim("s", "1Gi", capacity="1Gi"), claim("t", "1Gi"), strategy="snapshot")
    data.profiles["local"]["status"]["snapshotClass"] = "snaps"
    assert planner.snapshot_class(data, data.source, data.target) == "snaps"
    data.snapshot_classes[0]["driver"] = "elsewhere"
    assert planner.snapshot_class(data, data.source, data.target) == ""
