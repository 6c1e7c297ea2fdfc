"""CRD structural schemas: structurality checks, pruning, defaulting and validation, as kube does."""

from pycdi.cluster.apiserver.schema.defaults import apply_defaults
from pycdi.cluster.apiserver.schema.prune import (
    OBJECT_META_FIELDS,
    prune,
    strict_decoding_message,
    unknown_field_messages,
)
from pycdi.cluster.apiserver.schema.structural import check_structural, list_map_keys, list_type, sub_schema
from pycdi.cluster.apiserver.schema.validate import validate

__all__ = [
    "OBJECT_META_FIELDS",
    "apply_defaults",
    "check_structural",
    "list_map_keys",
    "list_type",
    "prune",
    "strict_decoding_message",
    "sub_schema",
    "unknown_field_messages",
    "validate",
]
