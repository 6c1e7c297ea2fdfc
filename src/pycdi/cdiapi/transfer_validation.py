"""ObjectTransfer validation, as upstream's `objecttransfer-validate.cdi.kubevirt.io` webhook (transfer-validate.go).

Upstream's rules and messages: the spec is immutable; a target namespace and/or name is required; only
DataVolume and PersistentVolumeClaim move; the target object must not exist yet. pycdi adds one: the target
namespace must exist (upstream admits the transfer and the controller then fails to create the target, after the
source is already gone). An admitted creation carries upstream's deprecation warning: kubectl prints it; pycdi
keeps the feature supported, but the warning tells users of upstream what to expect there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pycdi.api.constants import OBJECT_TRANSFER_SOURCE_KINDS

from .datavolume_validation import Lookup
from .webhook import error

Obj = dict[str, Any]

#: The webhook's name in upstream's ValidatingWebhookConfiguration `objecttransfer-api-validate`.
OBJECTTRANSFER_VALIDATE = "objecttransfer-validate.cdi.kubevirt.io"
DEPRECATION_WARNING = "ObjectTransfer feature is deprecated, and will be deleted soon"
MSG_IMMUTABLE = "ObjectTransfer spec is immutable"
MSG_NO_TARGET = "Target namespace and/or target name must be supplied"
#: The resource the target is looked up in, per source kind.
TARGET_RESOURCES = {"DataVolume": "datavolumes.cdi.kubevirt.io", "PersistentVolumeClaim": "persistentvolumeclaims"}


def unsupported_kind(kind: str) -> str:
    return f'Unsupported kind "{kind}"'


def target_exists(namespace: str, name: str) -> str:
    return f'ObjectTransfer target "{namespace}/{name}" already exists'


def namespace_missing(namespace: str) -> str:
    return f'ObjectTransfer target namespace "{namespace}" not found'


@dataclass
class Verdict:
    """Refused with `message` (upstream's toAdmissionResponseError: 400), or allowed with `warnings`."""

    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.message is None


def _normal(value: Any) -> Any:
    """The spec as Go's semantic equality sees it: nulls gone, empty maps and lists equal to absent ones."""
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


async def validate_object_transfer(obj: Obj, old: Obj | None, lookup: Lookup) -> Verdict:
    """The webhook's decision on a CREATE (`old` None) or UPDATE of an ObjectTransfer; lookup errors propagate."""
    spec = _dict(obj.get("spec"))
    if old is not None:
        if _normal(spec) != _normal(_dict(old.get("spec"))):
            return Verdict(MSG_IMMUTABLE)
        return Verdict()
    source, target = _dict(spec.get("source")), _dict(spec.get("target"))
    if target.get("namespace") is None and target.get("name") is None:
        return Verdict(MSG_NO_TARGET)
    namespace = str(target["namespace"] if target.get("namespace") is not None else source.get("namespace") or "")
    name = str(target["name"] if target.get("name") is not None else source.get("name") or "")
    kind = str(source.get("kind") or "")
    if kind not in OBJECT_TRANSFER_SOURCE_KINDS:
        return Verdict(unsupported_kind(kind))
    if await lookup.get("namespaces", "", namespace) is None:
        return Verdict(namespace_missing(namespace))
    if await lookup.get(TARGET_RESOURCES[kind], namespace, name) is not None:
        return Verdict(target_exists(namespace, name))
    return Verdict(warnings=[DEPRECATION_WARNING])


async def admit_object_transfer(obj: Obj, old: Obj | None, lookup: Lookup) -> tuple[Obj | None, list[str]]:
    """The AdmissionResponse: (None, warnings) to allow, else (the refusal's Status, [])."""
    try:
        verdict = await validate_object_transfer(obj, old, lookup)
    except Exception as e:  # the webhook could not read the cluster: upstream answers 400 with the error
        return error(str(e)), []
    if verdict.message is not None:
        return error(verdict.message), []
    return None, verdict.warnings


__all__ = ["DEPRECATION_WARNING", "OBJECTTRANSFER_VALIDATE", "Verdict", "admit_object_transfer",
           "validate_object_transfer"]
