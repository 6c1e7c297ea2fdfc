"""CDI admission on the embedded API server: `pycdi.cdiapi`'s webhooks adapted to its in-process admission chain.

On a real cluster kube-apiserver calls the webhooks over HTTPS and wraps a refusal into the error the client
sees; here the chain calls them in-process and this module does that wrapping the way kube-apiserver 1.32 does
(`ToStatusErr`), so kubectl prints the same `admission webhook "..." denied the request: ...` either way.
"""

from __future__ import annotations

from typing import Any

from ..cdiapi.transfer_validation import OBJECTTRANSFER_VALIDATE, admit_object_transfer
from ..cdiapi.webhook import DATAVOLUME_VALIDATE, admit_datavolume
from ..cluster.apiserver.admission import CREATE, UPDATE, AdmissionChain, AdmissionRequest
from ..cluster.apiserver.errors import APIError
from ..cluster.apiserver.service import ObjectService


class WebhookDenied(APIError):
    """A webhook's refusal as kube-apiserver returns it: the webhook's Status with the message prefixed."""

    def status(self) -> dict[str, Any]:
        body = super().status()
        if not body.get("reason"):
            body.pop("reason", None)  # Status.reason is omitempty: a webhook that gives none shows none
        return body


def webhook_denied(webhook: str, result: dict[str, Any]) -> WebhookDenied:
    """kube-apiserver's `ToStatusErr` (v1.32): a code of at least 400, and the webhook named in the message."""
    code = int(result.get("code") or 0)
    denied_by = f'admission webhook "{webhook}" denied the request'
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied_by}: {result['reason']}"
    else:
        message = f"{denied_by} without explanation"
    return WebhookDenied(max(code, 400), str(result.get("reason") or ""), message, result.get("details"))


class StoreLookup:
    """`cdiapi.Lookup` over the embedded server's store: what the webhook would read from the API."""

    def __init__(self, service: ObjectService) -> None:
        self._service = service

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        plural, _, group = resource.partition(".")
        info = self._service.catalog.preferred(group, plural)
        if info is None:
            return None
        return self._service.find(info, namespace, name)


class DataVolumeValidation:
    """`datavolume-validate.cdi.kubevirt.io`: CREATE and UPDATE of datavolumes (every served version)."""

    name = DATAVOLUME_VALIDATE

    def __init__(self, service: ObjectService) -> None:
        self._lookup = StoreLookup(service)

    def handles(self, request: AdmissionRequest) -> bool:
        # Upstream's rule names the resource `datavolumes` only: status writes are not validated.
        return (request.info.group == "cdi.kubevirt.io" and request.info.plural == "datavolumes"
                and request.operation in (CREATE, UPDATE) and not request.subresource)

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        if request.object is None:
            return
        old = request.old_object if request.operation == UPDATE else None
        result = await admit_datavolume(request.object, old, self._lookup)
        if result is not None:
            raise webhook_denied(self.name, result)


class ObjectTransferValidation:
    """`objecttransfer-validate.cdi.kubevirt.io`: CREATE and UPDATE of objecttransfers (not their status)."""

    name = OBJECTTRANSFER_VALIDATE

    def __init__(self, service: ObjectService) -> None:
        self._lookup = StoreLookup(service)

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.info.group == "cdi.kubevirt.io" and request.info.plural == "objecttransfers"
                and request.operation in (CREATE, UPDATE) and not request.subresource)

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        if request.object is None:
            return
        old = request.old_object if request.operation == UPDATE else None
        result, warnings = await admit_object_transfer(request.object, old, self._lookup)
        if result is not None:
            raise webhook_denied(self.name, result)
        request.warnings.extend(warnings)


def register_cdi_admission(chain: AdmissionChain, service: ObjectService) -> None:
    """Plug CDI's admission into the embedded server; call before it serves."""
    chain.register(DataVolumeValidation(service))
    chain.register(ObjectTransferValidation(service))


__all__ = ["DataVolumeValidation", "ObjectTransferValidation", "StoreLookup", "WebhookDenied",
           "register_cdi_admission", "webhook_denied"]
