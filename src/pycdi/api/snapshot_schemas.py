"""Schemas of the CSI snapshot types (snapshot.storage.k8s.io/v1), as external-snapshotter defines them."""

from __future__ import annotations

from pycdi.api.core_schemas import object_reference
from pycdi.api.schema_dsl import (
    Schema,
    boolean,
    date_time,
    int64,
    integer,
    obj,
    quantity,
    str_map,
    string,
)

DELETION_POLICIES = ("Delete", "Retain")


def _exactly_one_of(node: Schema, *fields: str) -> Schema:
    """Require exactly one of `fields` (upstream states the same rule in CEL)."""
    node["oneOf"] = [{"required": [f]} for f in fields]
    return node


def _snapshot_error() -> Schema:
    return obj({"message": string(), "time": date_time()})


def volume_snapshot_class_schema() -> Schema:
    # A class has no spec: its fields sit at the top level, like StorageClass.
    return obj(
        {
            "apiVersion": string(),
            "deletionPolicy": string(enum=DELETION_POLICIES),
            "driver": string(),
            "kind": string(),
            "metadata": obj(),
            "parameters": str_map(),
        },
        ["deletionPolicy", "driver"],
        description="VolumeSnapshotClass names the CSI driver and parameters used to take snapshots.",
    )


def volume_snapshot_schema() -> Schema:
    source = _exactly_one_of(
        obj({"persistentVolumeClaimName": string(), "volumeSnapshotContentName": string()}),
        "persistentVolumeClaimName", "volumeSnapshotContentName",
    )
    spec = obj({"source": source, "volumeSnapshotClassName": string(min_length=1)}, ["source"])
    status = obj({
        "boundVolumeSnapshotContentName": string(),
        "creationTime": date_time(),
        "error": _snapshot_error(),
        "readyToUse": boolean(),
        "restoreSize": quantity(),
        "volumeGroupSnapshotName": string(),
    })
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec, "status": status},
        ["spec"],
        description="VolumeSnapshot is a user's request for a snapshot of a PersistentVolumeClaim.",
    )


def volume_snapshot_content_schema() -> Schema:
    source = _exactly_one_of(obj({"snapshotHandle": string(), "volumeHandle": string()}),
                             "snapshotHandle", "volumeHandle")
    spec = obj(
        {
            "deletionPolicy": string(enum=DELETION_POLICIES),
            "driver": string(),
            "source": source,
            "sourceVolumeMode": string(),
            "volumeSnapshotClassName": string(),
            "volumeSnapshotRef": object_reference(),
        },
        ["deletionPolicy", "driver", "source", "volumeSnapshotRef"],
    )
    status = obj({
        "creationTime": int64("Nanoseconds since the epoch."),
        "error": _snapshot_error(),
        "readyToUse": boolean(),
        "restoreSize": integer(fmt="int64", minimum=0),
        "snapshotHandle": string(),
        "volumeGroupSnapshotHandle": string(),
    })
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec, "status": status},
        ["spec"],
        description="VolumeSnapshotContent is a snapshot taken on the storage system.",
    )
