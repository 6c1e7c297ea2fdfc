"""apiextensions.k8s.io/v1 CustomResourceDefinition validation: names, group, scope and versions."""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from ..schema import check_structural
from .metadata import as_dict, as_list, as_str
from .names import (
    immutable,
    invalid,
    is_dns1035_label,
    is_dns1123_subdomain,
    name_is_dns_subdomain,
    not_supported,
    required,
)

Obj = dict[str, Any]

SCOPES = ("Cluster", "Namespaced")


def crd_name_fn(obj: Obj) -> Any:
    """The metadata.name rule: a DNS subdomain that is exactly `<plural>.<group>`."""
    spec = as_dict(obj.get("spec"))
    wanted = f"{as_str(as_dict(spec.get('names')).get('plural'))}.{as_str(spec.get('group'))}"

    def check(name: str, prefix: bool) -> list[str]:
        msgs = name_is_dns_subdomain(name, prefix)
        if name != wanted:
            msgs.append('must be spec.names.plural+"."+spec.group')
        return msgs

    return check


def _names(names: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    plural, singular = as_str(names.get("plural")), as_str(names.get("singular"))
    kind = as_str(names.get("kind"))
    # v1 defaulting: singular is the lowercased kind, listKind is kind + "List".
    list_kind = as_str(names.get("listKind")) or (kind + "List" if kind else "")
    singular = singular or kind.lower()
    for fld, value in (("plural", plural), ("singular", singular)):
        errs = is_dns1035_label(value)
        if value and errs:
            causes.append(invalid(f"{path}.{fld}", value, ",".join(errs)))
    for fld, value in (("kind", kind), ("listKind", list_kind)):
        errs = is_dns1035_label(value.lower())
        if value and errs:
            causes.append(
                invalid(
                    f"{path}.{fld}",
                    value,
                    "may have mixed case, but should otherwise match: " + ",".join(errs),
                )
            )
    for i, short in enumerate(as_list(names.get("shortNames"))):
        errs = is_dns1035_label(as_str(short))
        if errs:
            causes.append(invalid(f"{path}.shortNames[{i}]", as_str(short), ",".join(errs)))
    if kind and kind == list_kind:
        causes.append(invalid(f"{path}.listKind", list_kind, "kind and listKind may not be the same"))
    for i, category in enumerate(as_list(names.get("categories"))):
        errs = is_dns1035_label(as_str(category))
        if errs:
            causes.append(invalid(f"{path}.categories[{i}]", as_str(category), ",".join(errs)))
    for fld, value in (("plural", plural), ("singular", singular), ("kind", kind), ("listKind", list_kind)):
        if not value:
            causes.append(required(f"{path}.{fld}"))
    return causes


def _versions_repr(versions: list[Any]) -> str:
    names = ", ".join(
        f'{{Name:"{as_str(as_dict(v).get("name"))}", Served:{str(as_dict(v).get("served") is True).lower()}, '
        f"Storage:{str(as_dict(v).get('storage') is True).lower()}}}"
        for v in versions
    )
    return f"[]apiextensions.CustomResourceDefinitionVersion{{{names}}}"


def _invalid_raw(field: str, rendered: str, detail: str) -> Cause:
    return {"reason": "FieldValueInvalid", "field": field, "message": f"Invalid value: {rendered}: {detail}"}


def validate_crd(obj: Obj) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes: list[Cause] = []
    group = as_str(spec.get("group"))
    if not group:
        causes.append(required("spec.group"))
    elif is_dns1123_subdomain(group):
        causes.append(invalid("spec.group", group, ",".join(is_dns1123_subdomain(group))))
    elif len(group.split(".")) < 2:
        causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = as_str(spec.get("scope"))
    if not scope:
        causes.append(required("spec.scope"))
    elif scope not in SCOPES:
        causes.append(not_supported("spec.scope", scope, SCOPES))
    versions = as_list(spec.get("versions"))
    storage_count = 0
    seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        version = as_dict(version)
        name = as_str(version.get("name"))
        path = f"spec.versions[{i}]"
        if version.get("storage") is True:
            storage_count += 1
        if name in seen:
            unique = False
        seen.add(name)
        errs = is_dns1035_label(name)
        if errs:
            causes.append(invalid(f"{path}.name", name, ",".join(errs)))
        schema = as_dict(version.get("schema"))
        if not isinstance(schema.get("openAPIV3Schema"), dict):
            causes.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        else:
            causes.extend(check_structural(schema["openAPIV3Schema"], f"{path}.schema.openAPIV3Schema"))
    if not unique:
        causes.append(
            _invalid_raw("spec.versions", _versions_repr(versions), "must contain unique version names")
        )
    if storage_count != 1:
        causes.append(
            _invalid_raw(
                "spec.versions",
                _versions_repr(versions),
                "must have exactly one version marked as storage version",
            )
        )
    causes += _names(as_dict(spec.get("names")), "spec.names")
    stored = [as_str(v) for v in as_list(as_dict(obj.get("status")).get("storedVersions"))]
    for i, stored_version in enumerate(stored):
        if stored_version not in seen:
            causes.append(
                invalid(f"status.storedVersions[{i}]", stored_version, "must appear in spec.versions")
            )
    return causes


def _established(obj: Obj) -> bool:
    for cond in as_list(as_dict(obj.get("status")).get("conditions")):
        cond = as_dict(cond)
        if cond.get("type") == "Established" and cond.get("status") == "True":
            return True
    return False


def validate_crd_update(obj: Obj, old: Obj) -> list[Cause]:
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    names, old_names = as_dict(spec.get("names")), as_dict(old_spec.get("names"))
    causes: list[Cause] = []
    if _established(old):
        # Scope and kind shape the storage and the clients' view once the CRD is served.
        causes += immutable("spec.scope", spec.get("scope"), old_spec.get("scope"))
        causes += immutable("spec.names.kind", names.get("kind"), old_names.get("kind"))
    causes += immutable("spec.group", spec.get("group"), old_spec.get("group"))
    causes += immutable("spec.names.plural", names.get("plural"), old_names.get("plural"))
    return causes
