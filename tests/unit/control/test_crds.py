"""CRD status (names, Established, storedVersions), the cleanup finalizer and instance deletion."""

from __future__ import annotations

from typing import Any

from pycdi.cluster.control import ControlPlane
from pycdi.cluster.control.crds import CLEANUP_FINALIZER

from .conftest import Cluster

CRD_GROUP, CRD_PLURAL = "apiextensions.k8s.io", "customresourcedefinitions"


def crd(plural: str, kind: str, group: str = "example.com", short: list[str] | None = None) -> dict[str, Any]:
    names: dict[str, Any] = {
        "plural": plural,
        "singular": kind.lower(),
        "kind": kind,
        "listKind": f"{kind}List",
    }
    if short:
        names["shortNames"] = short
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return dict(cond)
    return {}


async def test_crd_is_established_and_its_instances_deleted_with_it(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.create(CRD_GROUP, CRD_PLURAL, "", crd("widgets", "Widget", short=["wd"]))
    name = "widgets.example.com"
    established = await cluster.wait_for(
        lambda: (
            (c := cluster.get(CRD_GROUP, CRD_PLURAL, "", name))
            and condition(c, "Established").get("status") == "True"
            and c
        )
    )
    assert CLEANUP_FINALIZER in established["metadata"]["finalizers"]
    status = established["status"]
    assert status["acceptedNames"] == {
        "plural": "widgets",
        "singular": "widget",
        "kind": "Widget",
        "listKind": "WidgetList",
        "shortNames": ["wd"],
    }
    assert status["storedVersions"] == ["v1"]
    accepted = condition(established, "NamesAccepted")
    assert (accepted["status"], accepted["reason"], accepted["message"]) == (
        "True",
        "NoConflicts",
        "no conflicts found",
    )
    est = condition(established, "Established")
    assert (est["reason"], est["message"]) == ("InitialNamesAccepted", "the initial names have been accepted")

    await cluster.namespace("one")
    await cluster.namespace("two")
    for ns in ("one", "two"):
        await cluster.create(
            "example.com",
            "widgets",
            ns,
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"size": 1},
            },
        )
    await cluster.create(
        "example.com",
        "widgets",
        "one",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        },
    )

    await cluster.delete(CRD_GROUP, CRD_PLURAL, "", name)
    terminating = await cluster.wait_for(
        lambda: (
            (c := cluster.get(CRD_GROUP, CRD_PLURAL, "", name))
            and condition(c, "Terminating")
            and cluster.store.count("example.com/widgets") == 1
            and c
        )
    )
    assert condition(terminating, "Terminating")["reason"] == "InstanceDeletionInProgress"
    held = cluster.get("example.com", "widgets", "one", "held")
    assert held is not None and held["metadata"].get("deletionTimestamp")

    await cluster.service.remove_finalizer(
        cluster.info("example.com", "widgets"), "one", "held", "example.com/hold"
    )
    await cluster.wait_for(lambda: cluster.get(CRD_GROUP, CRD_PLURAL, "", name) is None)
    assert cluster.store.count("example.com/widgets") == 0


async def test_conflicting_names_are_not_accepted(cluster: Cluster, plane: ControlPlane) -> None:
    await cluster.create(CRD_GROUP, CRD_PLURAL, "", crd("gadgets", "Gadget"))
    await cluster.wait_for(
        lambda: (
            condition(cluster.get(CRD_GROUP, CRD_PLURAL, "", "gadgets.example.com"), "Established").get(
                "status"
            )
            == "True"
        )
    )
    await cluster.create(CRD_GROUP, CRD_PLURAL, "", crd("gizmos", "Gadget"))
    rejected = await cluster.wait_for(
        lambda: (
            (c := cluster.get(CRD_GROUP, CRD_PLURAL, "", "gizmos.example.com"))
            and condition(c, "NamesAccepted").get("status") == "False"
            and c
        )
    )
    accepted = condition(rejected, "NamesAccepted")
    # As kube's naming controller: kind and listKind both conflict, the last check (listKind) is reported.
    assert (accepted["reason"], accepted["message"]) == ("ListKindConflict", '"GadgetList" is already in use')
    established = condition(rejected, "Established")
    assert (established["status"], established["reason"]) == ("False", "NotAccepted")
    assert (
        "kind" not in rejected["status"]["acceptedNames"] or rejected["status"]["acceptedNames"]["kind"] == ""
    )

    # Once the holder goes, the names are free and the second CRD is accepted.
    await cluster.delete(CRD_GROUP, CRD_PLURAL, "", "gadgets.example.com")
    await cluster.wait_for(
        lambda: (
            condition(cluster.get(CRD_GROUP, CRD_PLURAL, "", "gizmos.example.com"), "Established").get(
                "status"
            )
            == "True"
        )
    )
