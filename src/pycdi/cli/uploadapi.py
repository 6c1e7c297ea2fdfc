"""CDI's upload API on the embedded API server: `pycdi.cdiapi`'s UploadTokenRequest as a virtual create-only
resource of the `upload.cdi.kubevirt.io` group (on a real cluster it is served by the aggregated CDI API server)."""

from __future__ import annotations

from typing import Any

from ..api import upload as u
from ..api.groups import UPLOAD_GROUP
from ..cdiapi.uploadtoken import InvalidTokenRequest, TokenIssuer, answer_token_request
from ..cluster.apiserver import errors
from ..cluster.apiserver.rest.app import APIServer
from ..cluster.apiserver.rest.virtual import VirtualRequest


def register_upload_api(server: APIServer, issuer: TokenIssuer) -> None:
    """Serve `uploadtokenrequests` (create only; RBAC `create` in the namespace); call before the server serves."""

    async def create(request: VirtualRequest) -> dict[str, Any]:
        try:
            return answer_token_request(request.body, request.namespace, issuer)
        except InvalidTokenRequest as e:
            name = str((request.body.get("metadata") or {}).get("name") or "")
            raise errors.invalid(UPLOAD_GROUP, u.UPLOAD_TOKEN_KIND, name, [
                {"reason": "FieldValueRequired", "message": str(e), "field": e.field}]) from None

    server.virtual.register(UPLOAD_GROUP, u.UPLOAD_TOKEN_VERSION, u.UPLOAD_TOKEN_PLURAL, u.UPLOAD_TOKEN_KIND, create,
                            namespaced=True, singular=u.UPLOAD_TOKEN_SINGULAR, short_names=u.UPLOAD_TOKEN_SHORT_NAMES,
                            schema=u.upload_token_request_schema())


__all__ = ["register_upload_api"]
