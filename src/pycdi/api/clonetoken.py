"""Clone tokens (upstream `pkg/token`): the admission webhook's short-lived signed statement that a user may clone a
source into a target, and the controller's long-lived extension of it bound to the DataVolume's, then the PVC's, UID.

PS256 JWTs. The webhook issues `cdi-apiserver` tokens valid 5 minutes; the controller validates one and issues a
`cdi-deployment` token valid 10 years carrying `params.uid`. Both are checked with the same public key and allow
10 s of clock skew, as upstream's validators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

Obj = dict[str, Any]
SHORT_ISSUER: Final = "cdi-apiserver"
EXTENDED_ISSUER: Final = "cdi-deployment"
SHORT_LIFETIME: Final = 5 * 60
EXTENDED_LIFETIME: Final = 10 * 365 * 24 * 3600
LEEWAY: Final = 10
OPERATION_CLONE: Final = "Clone"
ALGORITHM: Final = "PS256"
PVC_RESOURCE: Final[dict[str, str]] = {"group": "", "version": "v1", "resource": "persistentvolumeclaims"}
SNAPSHOT_RESOURCE: Final[dict[str, str]] = {"group": "snapshot.storage.k8s.io", "version": "v1",
                                            "resource": "volumesnapshots"}


class InvalidCloneToken(Exception):
    """Not ours, tampered with, expired, or not for this clone; `str()` says which."""


@dataclass(frozen=True)
class ClonePayload:
    """`token.Payload` of a clone: the source (name, namespace, resource) and params (targetNamespace,
    targetName, and once extended `uid`)."""

    name: str
    namespace: str
    resource: dict[str, str] = field(default_factory=lambda: dict(PVC_RESOURCE))
    params: dict[str, str] = field(default_factory=dict)
    operation: str = OPERATION_CLONE

    def claims(self) -> Obj:
        return {"operation": self.operation, "name": self.name, "namespace": self.namespace,
                "resource": dict(self.resource), "params": dict(self.params)}

    def with_params(self, **params: str) -> ClonePayload:
        return ClonePayload(self.name, self.namespace, dict(self.resource), {**self.params, **params}, self.operation)


def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("clone tokens are signed with an RSA key")
    return key


def public_key_pem(private_pem: bytes) -> bytes:
    return _private_key(private_pem).public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


class CloneTokens:
    """Issues (with the private key, when given) and validates (with the public key) both kinds of tokens."""

    def __init__(self, public_pem: bytes, private_pem: bytes | None = None) -> None:
        key = serialization.load_pem_public_key(public_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("clone tokens are verified with an RSA key")
        self._public = key
        self._private = _private_key(private_pem) if private_pem is not None else None

    @classmethod
    def from_private_key(cls, private_pem: bytes) -> CloneTokens:
        return cls(public_key_pem(private_pem), private_pem)

    def issue(self, payload: ClonePayload, *, extended: bool = False, now: float | None = None) -> str:
        if self._private is None:
            raise InvalidCloneToken("no signing key configured")
        issued = int(time.time() if now is None else now)
        lifetime = EXTENDED_LIFETIME if extended else SHORT_LIFETIME
        claims = {**payload.claims(), "iss": EXTENDED_ISSUER if extended else SHORT_ISSUER, "iat": issued,
                  "nbf": issued, "exp": issued + lifetime}
        return jwt.encode(claims, self._private, algorithm=ALGORITHM)

    def validate(self, token: str, *, extended: bool = False) -> ClonePayload:
        issuer = EXTENDED_ISSUER if extended else SHORT_ISSUER
        try:
            claims = jwt.decode(token, self._public, algorithms=[ALGORITHM, "RS256"], issuer=issuer, leeway=LEEWAY,
                                options={"require": ["iss", "exp", "nbf"]})
        except jwt.PyJWTError as err:
            raise InvalidCloneToken(str(err) or type(err).__name__) from err
        if claims.get("operation") != OPERATION_CLONE:
            raise InvalidCloneToken(f"invalid operation {claims.get('operation')!r}")
        resource, params = claims.get("resource"), claims.get("params")
        return ClonePayload(
            name=str(claims.get("name") or ""), namespace=str(claims.get("namespace") or ""),
            resource={str(k): str(v) for k, v in resource.items()} if isinstance(resource, dict) else {},
            params={str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
        )

    def check(self, token: str, *, source_ns: str, source: str, target_ns: str, target: str,
              uid: str | None = None, extended: bool = False) -> ClonePayload:
        """validateCloneTokenPVC: the token names exactly this source and target (and, extended, this UID)."""
        payload = self.validate(token, extended=extended)
        if payload.resource.get("resource") != PVC_RESOURCE["resource"] or payload.resource.get("group"):
            raise InvalidCloneToken("invalid resource type")
        if payload.name != source or payload.namespace != source_ns:
            raise InvalidCloneToken("invalid source")
        if payload.params.get("targetNamespace") != target_ns or payload.params.get("targetName") != target:
            raise InvalidCloneToken("invalid target")
        if uid is not None and payload.params.get("uid") != uid:
            raise InvalidCloneToken("invalid uid")
        return payload


__all__ = ["ClonePayload", "CloneTokens", "InvalidCloneToken", "public_key_pem"]
