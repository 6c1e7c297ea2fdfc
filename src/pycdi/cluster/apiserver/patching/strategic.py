"""Kubernetes strategic merge patch for the built-in kinds, driven by the table in merge_keys."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pycdi.cluster.apiserver.patching.jsonvalue import compact, json_equal
from pycdi.cluster.apiserver.patching.merge_keys import Path, list_strategy
from pycdi.cluster.apiserver.patching.patch_errors import PatchError, bad_request

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"

Lookup = Callable[[Path], Any]


def strategic_merge_patch(target: dict[str, Any], patch: object, api_version: str, kind: str
                          ) -> dict[str, Any]:
    """Apply a strategic merge patch (as kubectl and the Python client send for built-ins).

    Maps merge key by key and null deletes; lists with a merge strategy merge by their merge
    key (or as a set, for primitives); any other list is replaced. Directives: `$patch`
    (replace/delete/merge), `$retainKeys`, `$setElementOrder/<f>`, `$deleteFromPrimitiveList/<f>`.
    """
    del api_version  # every kind we serve has a single version, so only the kind matters
    if not isinstance(patch, dict):
        raise bad_request("invalid JSON document")
    merger = _Merger(kind)
    return merger.merge_map(copy.deepcopy(target), copy.deepcopy(patch), ())


class _Merger:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], path: Path) -> dict[str, Any]:
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                return self.fresh_map(patch, path)
            if directive == "delete":
                return {}
            if directive != "merge":
                raise bad_request(f"unknown patch type: {directive} in map: {patch}")
        self.retain_keys(original, patch)
        orders = {k[len(SET_ORDER):]: v for k, v in patch.items() if k.startswith(SET_ORDER)}
        for key, value in patch.items():
            if key == RETAIN_KEYS or key.startswith(SET_ORDER):
                continue
            if key.startswith(DELETE_PRIMITIVES):
                self.delete_primitives(original, key[len(DELETE_PRIMITIVES):], value)
                continue
            if value is None:
                original.pop(key, None)
                continue
            current = original.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                original[key] = self.merge_map(current, value, path + (key,))
            elif isinstance(current, list) and isinstance(value, list):
                original[key] = self.merge_list(current, value, path + (key,))
            else:
                # Absent, or of another type: take the patch value, with its own directives
                # resolved and nulls dropped (there is nothing for them to delete).
                original[key] = self.fresh(value, path + (key,))
        for field, order in orders.items():
            self.set_element_order(original, field, order, path + (field,))
        return original

    def fresh(self, value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return self.merge_map({}, value, path)
        if isinstance(value, list):
            return self.merge_list([], value, path)
        return value

    def fresh_map(self, patch: dict[str, Any], path: Path) -> dict[str, Any]:
        return self.merge_map({}, patch, path)

    @staticmethod
    def retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
        if RETAIN_KEYS not in patch:
            return
        retained = patch[RETAIN_KEYS]
        if not isinstance(retained, list):
            raise bad_request("invalid patch format of retainKeys")
        allowed = set(retained)
        for key, value in patch.items():
            if value is None or key.startswith("$"):
                continue
            if key not in allowed:
                raise bad_request("invalid patch format of retainKeys")
        for key in list(original):
            if key not in allowed:
                del original[key]

    @staticmethod
    def delete_primitives(original: dict[str, Any], field: str, values: Any) -> None:
        if not isinstance(values, list):
            raise bad_request("invalid patch format of primitive list")
        current = original.get(field)
        if isinstance(current, list):
            original[field] = [x for x in current if not any(json_equal(x, v) for v in values)]

    def merge_list(self, original: list[Any], patch: list[Any], path: Path) -> list[Any]:
        strategy = list_strategy(self.kind, path)
        if strategy is None:
            # No merge strategy: the patch list replaces the live one.
            return [self.fresh(v, path) for v in patch]
        if any(isinstance(v, list) for v in patch + original):
            raise PatchError(422, "lists of lists are not supported")
        key = strategy.merge_key
        if key is None or not any(isinstance(v, dict) for v in patch + original):
            merged = list(original)
            for value in patch:
                if not any(json_equal(value, m) for m in merged):
                    merged.append(value)
            return _order(merged, patch, original, _primitive_id)
        return self.merge_keyed(original, patch, path, key)

    def merge_keyed(self, original: list[Any], patch: list[Any], path: Path, key: str) -> list[Any]:
        items: list[dict[str, Any]] = []
        replace = False
        for value in patch:
            if not isinstance(value, dict):
                raise bad_request(f"invalid list element {value!r} in a list merged by {key}")
            directive = value.get(DIRECTIVE)
            if directive is None:
                if key not in value:
                    raise bad_request(f"map: {value} does not contain declared merge key: {key}")
                items.append(value)
            elif directive == "delete":
                if key not in value:
                    raise bad_request(f"map: {value} does not contain declared merge key: {key}")
                original = [o for o in original
                            if not (isinstance(o, dict) and json_equal(o.get(key), value[key]))]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise bad_request("merging lists cannot yet be specified in the patch")
            else:
                raise bad_request(f"unknown patch type: {directive} in map: {value}")
        ident = _keyed_id(key)
        if replace:
            return [self.fresh_map(v, path) for v in items]
        merged = list(original)
        for value in items:
            for i, live in enumerate(merged):
                if isinstance(live, dict) and json_equal(live.get(key), value[key]):
                    merged[i] = self.merge_map(live, value, path)
                    break
            else:
                merged.append(self.fresh_map(value, path))
        return _order(merged, items, original, ident)

    def set_element_order(self, original: dict[str, Any], field: str, order: Any, path: Path) -> None:
        if not isinstance(order, list):
            raise bad_request("invalid patch format of setElementOrder list")
        current = original.get(field)
        if not isinstance(current, list):
            return
        strategy = list_strategy(self.kind, path)
        key = strategy.merge_key if strategy else None
        ident = _keyed_id(key) if key and any(isinstance(v, dict) for v in current) else _primitive_id
        original[field] = _order(current, order, current, ident)


def _primitive_id(value: Any) -> str:
    return compact(value)


def _keyed_id(key: str) -> Callable[[Any], str]:
    def ident(value: Any) -> str:
        return compact(value.get(key)) if isinstance(value, dict) else compact(value)
    return ident


def _order(merged: list[Any], patch_order: list[Any], server_order: list[Any],
           ident: Callable[[Any], str]) -> list[Any]:
    """Order a merged list like apimachinery: items named by the patch (or `$setElementOrder`)
    follow that order; the others keep their live order, interleaved by live position."""
    patch_pos = {ident(v): i for i, v in enumerate(patch_order)}
    live_pos = {ident(v): i for i, v in enumerate(server_order)}
    in_patch = sorted((v for v in merged if ident(v) in patch_pos), key=lambda v: patch_pos[ident(v)])
    server_only = [v for v in merged if ident(v) not in patch_pos]
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(in_patch[j])
            j += 1
        else:
            left, right = live_pos.get(ident(server_only[i])), live_pos.get(ident(in_patch[j]))
            if left is not None and right is not None and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out
