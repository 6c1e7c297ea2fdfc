"""What CDI's admission webhooks answer: the `AdmissionResponse.result` Status of a refusal, as upstream builds it.

On a real cluster kube-apiserver wraps this Status into the error the client sees; the embedded server's adapter
(`pycdi.cli.admission`) does the same wrapping, so both answer alike.
"""

from __future__ import annotations

from typing import Any

from .datavolume_validation import AdmissionError, Cause, Lookup, validate_datavolume

#: The webhook's name in upstream's ValidatingWebhookConfiguration `cdi-api-datavolume-validate`.
DATAVOLUME_VALIDATE = "datavolume-validate.cdi.kubevirt.io"


def rejection(causes: list[Cause]) -> dict[str, Any]:
    """`toRejectedAdmissionResponse`: 422, every cause's message each after one space, and the causes."""
    message = "".join(f" {c['message']}" for c in causes)
    return {"message": message, "code": 422, "details": {"causes": causes}}


def error(message: str) -> dict[str, Any]:
    """`toAdmissionResponseError`: the webhook failed to decide; 400 with the error's text."""
    return {"message": message, "code": 400}


async def admit_datavolume(dv: dict[str, Any], old: dict[str, Any] | None, lookup: Lookup) -> dict[str, Any] | None:
    """None to allow the DataVolume, else the refusal's Status (`AdmissionResponse.result`)."""
    try:
        causes = await validate_datavolume(dv, old, lookup)
    except AdmissionError as e:
        return error(str(e))
    return rejection(causes) if causes else None


__all__ = ["DATAVOLUME_VALIDATE", "admit_datavolume", "error", "rejection"]
