"""Schemas of the hostpath-provisioner operator resource (hostpathprovisioner.kubevirt.io)."""

from __future__ import annotations

from pycdi.api.core_schemas import condition, node_placement, pvc_spec, pvc_status
from pycdi.api.schema_dsl import Schema, arr, boolean, integer, obj, string

STORAGE_POOL_PHASES = ("Preparing", "Mounting", "Ready")


def _status(*, with_pools: bool) -> Schema:
    props: dict[str, Schema] = {
        "conditions": arr(condition(), list_type="atomic"),
        "observedVersion": string(),
        "operatorVersion": string(),
        "targetVersion": string(),
    }
    if with_pools:
        claim = obj({"name": string(), "status": pvc_status()}, ["name", "status"])
        pool = obj(
            {
                "claimStatuses": arr(claim, list_type="atomic"),
                "currentReady": integer(),
                "desiredReady": integer(),
                "name": string(),
                "phase": string(),
            },
            ["name", "phase"],
        )
        props["storagePoolStatuses"] = arr(pool, list_type="atomic")
    return obj(props)


def _root(spec: Schema, status: Schema) -> Schema:
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec, "status": status},
        description="HostPathProvisioner deploys the hostpath provisioner and describes where on each "
                    "node its volumes live.",
    )


def hpp_schema() -> Schema:
    """v1beta1: `pathConfig` (legacy, one directory) or `storagePools` (CSI driver)."""
    pool = obj(
        {
            "name": string(),
            "overlayClassName": string(),
            "path": string(),
            "pvcTemplate": pvc_spec(),
            "snapshotProvider": string(),
        },
        ["name", "path"],
    )
    spec = obj({
        "featureGates": arr(string(), list_type="set"),
        "imagePullPolicy": string(),
        "pathConfig": obj({"path": string(), "useNamingPrefix": boolean()}),
        "storagePools": arr(pool, list_type="atomic"),
        "workload": node_placement(),
    })
    return _root(spec, _status(with_pools=True))


def hpp_v1alpha1_schema() -> Schema:
    """v1alpha1 (removed upstream in 2022, still in OpenShift 4.x docs).

    Its `useNamingPrefix` is a *string* ("true"/"false"); objects created through this version keep
    the string, so readers of `pathConfig.useNamingPrefix` must accept both forms.
    """
    spec = obj(
        {
            "imagePullPolicy": string(),
            "pathConfig": obj({"path": string(), "useNamingPrefix": string()}),
            "workload": node_placement(),
        },
        ["pathConfig"],
    )
    return _root(spec, _status(with_pools=False))
