"""Schema of CDI's VolumeCloneSource: the populator source a clone target PVC names in its `dataSourceRef`."""

from __future__ import annotations

from pycdi.api.core_schemas import typed_local_object_reference
from pycdi.api.schema_dsl import Schema, boolean, obj, string


def volume_clone_source_schema() -> Schema:
    """`VolumeCloneSource` (cdi.kubevirt.io/v1beta1, namespaced): what to clone (a PVC or a VolumeSnapshot of its
    namespace), with the preallocation and priority class the clone's workers use."""
    spec = obj(
        {
            "source": typed_local_object_reference(),
            "preallocation": boolean("Preallocate the target's blocks (host-assisted clones)."),
            "priorityClassName": string(description="The priority class of the clone's worker pods."),
        },
        ["source"],
    )
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec},
        ["spec"],
        description="VolumeCloneSource refers to a PVC or VolumeSnapshot to clone into the PVC naming it.",
    )
