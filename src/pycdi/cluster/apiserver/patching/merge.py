"""JSON merge patch (RFC 7386), as sent by `kubectl label/annotate` and most Python clients."""

from __future__ import annotations

import copy
from typing import Any

from pycdi.cluster.apiserver.patching.patch_errors import bad_request


def merge_patch(target: dict[str, Any], patch: object) -> dict[str, Any]:
    """Apply `patch` to a copy of `target`; null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        # A Kubernetes object is always a JSON object, so a patch that would turn it into
        # something else is refused up front rather than producing an undecodable object.
        raise bad_request("the merge patch must be a JSON object")
    result: dict[str, Any] = _merge(copy.deepcopy(target), patch)
    return result


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result
