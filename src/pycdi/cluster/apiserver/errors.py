"""API errors: every failure the API server reports, rendered as a Kubernetes `Status`."""

from __future__ import annotations

from typing import Any

Cause = dict[str, str]


class APIError(Exception):
    """An error answered to the client as a `Status` with an HTTP code and a machine reason."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(group: str, plural: str) -> str:
    """`persistentvolumeclaims` for the core group, `datavolumes.cdi.kubevirt.io` otherwise."""
    return f"{plural}.{group}" if group else plural


def _details(group: str, plural: str, name: str, causes: list[Cause] | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if causes:
        details["causes"] = causes
    return details


def not_found(group: str, plural: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{qualified(group, plural)} "{name}" not found',
                    _details(group, plural, name))


def already_exists(group: str, plural: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{qualified(group, plural)} "{name}" already exists',
                    _details(group, plural, name))


def conflict(group: str, plural: str, name: str, why: str | None = None) -> APIError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(group, plural)} "{name}": {why}',
                    _details(group, plural, name))


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> APIError:
    """422 Invalid; each cause is {"reason": FieldValueInvalid|..., "message": ..., "field": ...}."""
    parts = list(dict.fromkeys(
        f'{c["field"]}: {c["message"]}' if c.get("field") else c["message"] for c in causes
    ))
    # kube-apiserver brackets the list when there is more than one distinct cause.
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    what = f"{kind}.{group}" if group else kind
    return APIError(422, "Invalid", f'{what} "{name}" is invalid: {summary}',
                    {"name": name, "group": group, "kind": kind, "causes": causes} if group
                    else {"name": name, "kind": kind, "causes": causes})


def bad_request(message: str, causes: list[Cause] | None = None) -> APIError:
    return APIError(400, "BadRequest", message, {"causes": causes} if causes else None)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, group: str, plural: str, name: str, namespace: str,
              subresource: str = "", why: str = "") -> APIError:
    resource = f"{plural}/{subresource}" if subresource else plural
    what = f'{qualified(group, plural)} "{name}"' if name else qualified(group, plural)
    if subresource and not name:
        what = qualified(group, plural)
    scope = (f'in the namespace "{namespace}"' if namespace else "at the cluster scope")
    message = (f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{group}" {scope}')
    if why:
        message += f": {why}"
    return APIError(403, "Forbidden", message, _details(group, plural, name))


def forbidden_message(message: str, group: str = "", plural: str = "", name: str = "") -> APIError:
    return APIError(403, "Forbidden", message, _details(group, plural, name) if plural else None)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource"
                       ) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(accepted)}")


def too_large(limit: int) -> APIError:
    return APIError(413, "RequestEntityTooLarge",
                    f"the request body is too large: limit is {limit} bytes")


def expired(message: str) -> APIError:
    """410 Gone: a resourceVersion or continue token older than the compacted revision."""
    return APIError(410, "Expired", message)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)
