"""ObjectTransfer admission: upstream's rules and messages, pycdi's namespace check, the deprecation warning."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cdiapi.transfer_validation import (
    DEPRECATION_WARNING,
    admit_object_transfer,
    validate_object_transfer,
)

Obj = dict[str, Any]
NS = ("namespaces", "", "dst")


class Lookup:
    def __init__(self, *present: tuple[str, str, str], fail: bool = False) -> None:
        self.present = set(present)
        self.fail = fail

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        if self.fail:
            raise ConnectionError("connection refused")
        return {"metadata": {"name": name}} if (resource, namespace, name) in self.present else None


def ot(kind: str = "PersistentVolumeClaim", target: Obj | None = None, **source: Any) -> Obj:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "ObjectTransfer", "metadata": {"name": "t"},
            "spec": {"source": {"kind": kind, "namespace": "src", "name": "disk", **source},
                     "target": {"namespace": "dst"} if target is None else target}}


async def test_allowed_with_upstreams_deprecation_warning() -> None:
    verdict = await validate_object_transfer(ot(), None, Lookup(NS))
    assert verdict.allowed and verdict.warnings == [DEPRECATION_WARNING]


@pytest.mark.parametrize(("obj", "lookup", "message"), [
    (ot(target={}), Lookup(NS), "Target namespace and/or target name must be supplied"),
    (ot(kind="ConfigMap"), Lookup(NS), 'Unsupported kind "ConfigMap"'),
    (ot(kind="persistentvolumeclaim"), Lookup(NS), 'Unsupported kind "persistentvolumeclaim"'),  # exact, as upstream
    (ot(), Lookup(), 'ObjectTransfer target namespace "dst" not found'),
    (ot(), Lookup(NS, ("persistentvolumeclaims", "dst", "disk")), 'ObjectTransfer target "dst/disk" already exists'),
    (ot("DataVolume"), Lookup(NS, ("datavolumes.cdi.kubevirt.io", "dst", "disk")),
     'ObjectTransfer target "dst/disk" already exists'),
    # A rename in place: the target namespace is the source's.
    (ot(target={"name": "disk"}), Lookup(("namespaces", "", "src"), ("persistentvolumeclaims", "src", "disk")),
     'ObjectTransfer target "src/disk" already exists'),
])
async def test_refusals(obj: Obj, lookup: Lookup, message: str) -> None:
    verdict = await validate_object_transfer(obj, None, lookup)
    assert verdict.message == message and verdict.warnings == []


async def test_rename_in_place_is_allowed() -> None:
    verdict = await validate_object_transfer(ot(target={"name": "renamed"}), None, Lookup(("namespaces", "", "src")))
    assert verdict.allowed


async def test_spec_is_immutable_but_the_rest_is_not() -> None:
    old = ot(requiredAnnotations={})
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"a": "b"}
    relabelled["spec"]["source"].pop("requiredAnnotations")  # empty and absent are equal (Go semantic equality)
    assert (await validate_object_transfer(relabelled, old, Lookup())).allowed
    changed = copy.deepcopy(old)
    changed["spec"]["target"]["name"] = "other"
    assert (await validate_object_transfer(changed, old, Lookup())).message == "ObjectTransfer spec is immutable"


async def test_admission_response_shapes() -> None:
    assert await admit_object_transfer(ot(), None, Lookup(NS)) == (None, [DEPRECATION_WARNING])
    assert await admit_object_transfer(ot(kind="Pod"), None, Lookup(NS)) == (
        {"message": 'Unsupported kind "Pod"', "code": 400}, [])
    assert await admit_object_transfer(ot(), None, Lookup(fail=True)) == (
        {"message": "connection refused", "code": 400}, [])
