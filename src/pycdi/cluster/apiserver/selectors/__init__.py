"""Label and field selectors, as kube-apiserver parses and applies them to lists and watches."""

from .errors import SelectorError
from .fields import (
    FieldSelector,
    FieldTerm,
    escape_field_value,
    field_selector_values,
    field_value,
    parse_field_selector,
    supported_fields,
)
from .labels import LabelSelector, Requirement, label_selector_from_dict, new_requirement, parse_label_selector

__all__ = [
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "escape_field_value",
    "field_selector_values",
    "field_value",
    "label_selector_from_dict",
    "new_requirement",
    "parse_field_selector",
    "parse_label_selector",
    "supported_fields",
]
