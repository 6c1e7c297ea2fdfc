"""Schemas of meta/v1 ObjectMeta and of a kind's root, shared by the built-in kinds' schemas."""

from __future__ import annotations

from pycdi.api.core_schemas import merge_list, merge_set
from pycdi.api.schema_dsl import Schema, arr, boolean, date_time, int64, obj, preserve_unknown, str_map, string

_TYPE_META = {
    "apiVersion": string(description="APIVersion defines the versioned schema of this representation of an "
                                     "object."),
    "kind": string(description="Kind is a string value representing the REST resource this object "
                               "represents."),
}


def owner_reference() -> Schema:
    return obj({
        "apiVersion": string(),
        "blockOwnerDeletion": boolean(),
        "controller": boolean(),
        "kind": string(),
        "name": string(),
        "uid": string(),
    }, ["apiVersion", "kind", "name", "uid"], map_type="atomic")


def managed_fields_entry() -> Schema:
    return obj({
        "apiVersion": string(),
        "fieldsType": string(),
        "fieldsV1": preserve_unknown("The field set, in the FieldsV1 trie format."),
        "manager": string(),
        "operation": string(),
        "subresource": string(),
        "time": date_time(),
    })


def object_meta() -> Schema:
    """meta/v1 ObjectMeta, every field: `metadata.lables` is an unknown field as in kube."""
    return obj({
        "annotations": str_map(),
        "creationTimestamp": date_time(),
        "deletionGracePeriodSeconds": int64(),
        "deletionTimestamp": date_time(),
        "finalizers": merge_set(),
        "generateName": string(),
        "generation": int64(),
        "labels": str_map(),
        "managedFields": arr(managed_fields_entry(), list_type="atomic"),
        "name": string(),
        "namespace": string(),
        "ownerReferences": merge_list(owner_reference(), "uid"),
        "resourceVersion": string(),
        "selfLink": string(),
        "uid": string(),
    }, description="Standard object's metadata.")


def kind_schema(description: str, props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """A kind's root: apiVersion, kind and the full ObjectMeta, plus its own fields."""
    return obj({**_TYPE_META, "metadata": object_meta(), **props}, required, description=description)
