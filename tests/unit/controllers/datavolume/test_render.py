"""Rendering a DataVolume's PVC spec: the storage API completed from profile, defaults ConfigMap and overhead."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.controllers.datavolume.render import (
    ClaimNotValid,
    RenderContext,
    preallocation,
    render_pvc_spec,
    required_space,
)

GI = 1 << 30


def sc(name: str, *, default: bool = False, virt: bool = False, created: str = "2026-01-01T00:00:00Z",
       mode: str = "Immediate") -> dict[str, Any]:
    annotations = {}
    if default:
        annotations["storageclass.kubernetes.io/is-default-class"] = "true"
    if virt:
        annotations["storageclass.kubevirt.io/is-default-virt-class"] = "true"
    return {"metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
            "provisioner": "x", "volumeBindingMode": mode}


def profile(*sets: tuple[list[str], str], minimum: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"annotations": {"cdi.kubevirt.io/minimumSupportedPvcSize": minimum} if minimum else {}}
    return {"metadata": meta, "status": {"claimPropertySets": [{"accessModes": a, "volumeMode": m} for a, m in sets]}}


def config(global_: str = "0.06", **per_class: str) -> dict[str, Any]:
    return {"status": {"filesystemOverhead": {"global": global_, "storageClass": per_class},
                       "preallocation": False}}


def dv(storage: dict[str, Any] | None = None, *, pvc: dict[str, Any] | None = None, content: str | None = None,
       source: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": source or {"blank": {}}}
    if storage is not None:
        spec["storage"] = storage
    if pvc is not None:
        spec["pvc"] = pvc
    if content:
        spec["contentType"] = content
    return {"metadata": {"name": "d", "namespace": "ns"}, "spec": spec}


def size(value: str = "1Gi") -> dict[str, Any]:
    return {"resources": {"requests": {"storage": value}}}


def ctx(classes: list[dict[str, Any]], profiles: dict[str, dict[str, Any]] | None = None,
        defaults: dict[str, str] | None = None, cdi: dict[str, Any] | None = None,
        volumes: list[dict[str, Any]] | None = None) -> RenderContext:
    profiles = profiles or {}
    return RenderContext(classes=classes, profile=profiles.get, defaults=defaults or {},
                         cdi_config=cdi if cdi is not None else config(), volumes=volumes or [])


@pytest.mark.parametrize(("overhead", "requested", "expected"), [
    (0.06, GI, 1138166334),                      # ceil(1073741824 * 1.06)
    (0.06, GI + 1, 1139277824),                  # aligned up to 1025 MiB first
    (0.0, 5 * (1 << 20) + 3, 6 * (1 << 20)),
    (0.055, 2 * GI, 2265595249),                 # ceil(2147483648 * 1.055 = 2265595248.64)
    (1.0, 1 << 20, 2 << 20),
])
def test_required_space_is_upstreams(overhead: float, requested: int, expected: int) -> None:
    assert required_space(overhead, requested) == expected


def test_pvc_api_is_copied_unchanged() -> None:
    pvc = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
    assert render_pvc_spec(dv(pvc=pvc), ctx([sc("local", default=True)])) == pvc


def test_storage_api_from_default_class_and_its_profile_with_overhead() -> None:
    out = render_pvc_spec(dv(size()), ctx([sc("local", default=True)],
                                          {"local": profile((["ReadWriteOnce"], "Filesystem"))}))
    assert out == {"storageClassName": "local", "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                   "resources": {"requests": {"storage": "1138166334"}}}


def test_block_is_not_inflated_and_per_class_overhead_applies() -> None:
    classes = [sc("fast", default=True)]
    profiles = {"fast": profile((["ReadWriteMany"], "Block"), (["ReadWriteOnce"], "Filesystem"))}
    block = render_pvc_spec(dv(size()), ctx(classes, profiles, cdi=config("0.06", fast="0.1")))
    assert block["volumeMode"] == "Block" and block["accessModes"] == ["ReadWriteMany"]
    assert block["resources"]["requests"]["storage"] == str(GI)
    fs = render_pvc_spec(dv({**size(), "volumeMode": "Filesystem"}), ctx(classes, profiles,
                                                                          cdi=config("0.06", fast="0.1")))
    assert fs["accessModes"] == ["ReadWriteOnce"]  # the first set of that volume mode
    assert fs["resources"]["requests"]["storage"] == str(required_space(0.1, GI))


def test_access_modes_given_pick_the_volume_mode_of_a_matching_set() -> None:
    profiles = {"c": profile((["ReadWriteOnce"], "Filesystem"), (["ReadWriteMany"], "Block"))}
    out = render_pvc_spec(dv({**size(), "accessModes": ["ReadWriteMany"], "storageClassName": "c"}),
                          ctx([sc("c")], profiles))
    assert out["volumeMode"] == "Block"


def test_virt_default_class_wins_for_kubevirt_content_only() -> None:
    classes = [sc("kube", default=True), sc("virt", virt=True)]
    profiles = {n: profile((["ReadWriteOnce"], "Filesystem")) for n in ("kube", "virt")}
    assert render_pvc_spec(dv(size()), ctx(classes, profiles))["storageClassName"] == "virt"
    assert render_pvc_spec(dv(size(), content="archive"), ctx(classes, profiles))["storageClassName"] == "kube"


def test_newest_default_class_wins_then_name() -> None:
    classes = [sc("b", default=True, created="2026-01-02T00:00:00Z"), sc("a", default=True,
                                                                       created="2026-01-02T00:00:00Z"),
               sc("z", default=True, created="2026-01-01T00:00:00Z")]
    profiles = {n: profile((["ReadWriteOnce"], "Filesystem")) for n in "abz"}
    assert render_pvc_spec(dv(size()), ctx(classes, profiles))["storageClassName"] == "a"


def test_defaults_configmap_fills_what_the_profile_lacks() -> None:
    classes = [sc("plain", default=True), sc("other")]
    defaults = {"accessMode": "ReadWriteOnce", "volumeMode": "Filesystem", "other.accessMode": "ReadWriteMany",
                "other.volumeMode": "Block"}
    out = render_pvc_spec(dv(size()), ctx(classes, {"plain": profile()}, defaults))
    assert out["accessModes"] == ["ReadWriteOnce"] and out["volumeMode"] == "Filesystem"
    other = render_pvc_spec(dv({**size(), "storageClassName": "other"}), ctx(classes, {}, defaults))
    assert other["accessModes"] == ["ReadWriteMany"] and other["volumeMode"] == "Block"
    assert other["resources"]["requests"]["storage"] == str(GI)
    # The profile, when it says something, comes first.
    first = render_pvc_spec(dv(size()), ctx(classes, {"plain": profile((["ReadOnlyMany"], "Block"))}, defaults))
    assert first["accessModes"] == ["ReadOnlyMany"] and first["volumeMode"] == "Block"


def test_empty_profile_and_no_defaults_is_not_valid() -> None:
    with pytest.raises(ClaimNotValid) as e:
        render_pvc_spec(dv(size()), ctx([sc("empty", default=True)], {"empty": profile()}))
    assert e.value.message == "no accessMode specified in StorageProfile empty"
    assert e.value.event == ("Spec is missing accessMode and volumeMode, cannot get access mode from "
                             "StorageProfile empty")


def test_no_class_at_all() -> None:
    with pytest.raises(ClaimNotValid) as e:
        render_pvc_spec(dv(size()), ctx([]))
    assert e.value.message == "PVC spec is missing accessMode and no storageClass to choose profile"
    assert e.value.wait_for_class


def test_missing_class_uses_an_available_pv_of_that_name() -> None:
    pv = {"metadata": {"name": "pv1"}, "status": {"phase": "Available"},
          "spec": {"storageClassName": "manual", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                   "volumeMode": "Block"}}
    out = render_pvc_spec(dv({**size(), "storageClassName": "manual"}), ctx([], volumes=[pv]))
    assert out["accessModes"] == ["ReadWriteOnce"] and out["volumeMode"] == "Block"


def test_archive_forces_filesystem_and_refuses_block() -> None:
    classes = [sc("c", default=True)]
    profiles = {"c": profile((["ReadWriteOnce"], "Block"))}
    with pytest.raises(ClaimNotValid, match="ContentType Archive cannot have block volumeMode"):
        render_pvc_spec(dv({**size(), "volumeMode": "Block"}, content="archive"), ctx(classes, profiles))
    with pytest.raises(ClaimNotValid, match="no matching accessMode specified in StorageProfile c"):
        render_pvc_spec(dv(size(), content="archive"), ctx(classes, profiles))


@pytest.mark.parametrize(("storage", "message"), [
    ({}, "PVC Spec is not valid - missing storage size"),
    (size("1000Ki"), "PVC Spec is not valid - storage size should be at least 1MiB"),
])
def test_size_rules(storage: dict[str, Any], message: str) -> None:
    classes = [sc("c", default=True)]
    with pytest.raises(ClaimNotValid, match=message):
        render_pvc_spec(dv(storage), ctx(classes, {"c": profile((["ReadWriteOnce"], "Filesystem"))}))


def test_clone_may_omit_size_and_minimum_size_floor() -> None:
    classes = [sc("c", default=True)]
    profiles = {"c": profile((["ReadWriteOnce"], "Filesystem"), minimum="5Gi")}
    out = render_pvc_spec(dv({}, source={"pvc": {"name": "s", "namespace": "n"}}), ctx(classes, profiles))
    assert out["resources"]["requests"]["storage"] == "0"
    assert render_pvc_spec(dv(size()), ctx(classes, profiles))["resources"]["requests"]["storage"] == "5Gi"


def test_no_cdiconfig_or_empty_class_means_no_overhead() -> None:
    classes = [sc("c", default=True)]
    profiles = {"c": profile((["ReadWriteOnce"], "Filesystem"))}
    out = render_pvc_spec(dv(size()), RenderContext(classes=classes, profile=profiles.get, cdi_config=None))
    assert out["resources"]["requests"]["storage"] == str(GI)


def test_preallocation_order() -> None:
    on = {"status": {"preallocation": True}}
    assert preallocation({"spec": {}}, on) is True
    assert preallocation({"spec": {"preallocation": False}}, on) is False
    assert preallocation({"spec": {}}, None) is False
