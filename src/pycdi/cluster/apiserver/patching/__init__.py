"""Patch engines of the embedded API server: merge, JSON, strategic merge, server-side apply."""

from pycdi.cluster.apiserver.patching.apply import ApplyConflict, server_side_apply
from pycdi.cluster.apiserver.patching.jsonpatch import json_patch
from pycdi.cluster.apiserver.patching.managed_fields import update_managed_fields
from pycdi.cluster.apiserver.patching.merge import merge_patch
from pycdi.cluster.apiserver.patching.merge_keys import BUILTIN_KINDS, builtin_list_map_keys
from pycdi.cluster.apiserver.patching.patch_errors import PatchError
from pycdi.cluster.apiserver.patching.strategic import strategic_merge_patch

__all__ = [
    "BUILTIN_KINDS",
    "ApplyConflict",
    "PatchError",
    "builtin_list_map_keys",
    "json_patch",
    "merge_patch",
    "server_side_apply",
    "strategic_merge_patch",
    "update_managed_fields",
]
