"""UploadTokenRequest: short-lived signed tokens naming the PVC an upload may write (upstream's pkg/token and the
cdi-apiserver's uploadHandler): PS256 JWTs from `cdi-apiserver`, valid 5 minutes, nothing persisted."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pycdi.atomicfile import write_atomic

from ..api import upload as u

Obj = dict[str, Any]
PVC_RESOURCE: Obj = {"group": "", "version": "v1", "resource": "persistentvolumeclaims"}
#: Upstream signs PS256; RS256 tokens (the other RSA scheme kube tooling uses) are accepted too.
SIGNING_ALGORITHM = "PS256"
ACCEPTED_ALGORITHMS = ("PS256", "RS256")
PRIVATE_KEY_FILE = "upload-signing.key"
PUBLIC_KEY_FILE = "upload-signing.pub"
KEY_BITS = 2048


class InvalidToken(Exception):
    """A token that is not ours, was tampered with, is malformed, or has expired; `str()` says which."""


class InvalidTokenRequest(ValueError):
    """An UploadTokenRequest that cannot be answered; `field` is the offending field path."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path


@dataclass(frozen=True)
class Payload:
    """`token.Payload`: what the token allows (the claims besides the registered iss/iat/nbf/exp)."""

    operation: str
    name: str
    namespace: str
    resource: Obj = field(default_factory=lambda: dict(PVC_RESOURCE))
    params: dict[str, str] = field(default_factory=dict)

    def claims(self) -> Obj:
        out: Obj = {"operation": self.operation, "name": self.name, "namespace": self.namespace,
                    "resource": dict(self.resource)}
        if self.params:
            out["params"] = dict(self.params)
        return out

    @property
    def is_pvc(self) -> bool:
        return self.resource.get("resource") == "persistentvolumeclaims" and not self.resource.get("group")


class TokenIssuer:
    """Signs upload tokens with the API's private key."""

    def __init__(self, private_key_pem: bytes, *, issuer: str = u.TOKEN_ISSUER,
                 lifetime: float = u.TOKEN_LIFETIME_SECONDS) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("upload tokens are signed with an RSA key")
        self._key = key
        self.issuer = issuer
        self.lifetime = lifetime

    def issue(self, payload: Payload, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {**payload.claims(), "iss": self.issuer, "iat": issued, "nbf": issued,
                  "exp": issued + int(self.lifetime)}
        return jwt.encode(claims, self._key, algorithm=SIGNING_ALGORITHM)

    def upload_token(self, pvc: str, namespace: str) -> str:
        return self.issue(Payload(u.OPERATION_UPLOAD, pvc, namespace))


class TokenValidator:
    """Checks a token's signature, issuer and times (with leeway for clock skew) and returns its payload."""

    def __init__(self, public_key_pem: bytes, *, issuer: str = u.TOKEN_ISSUER,
                 leeway: float = u.TOKEN_LEEWAY_SECONDS) -> None:
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("upload tokens are verified with an RSA key")
        self._key = key
        self.issuer = issuer
        self.leeway = leeway

    def validate(self, token: str) -> Payload:
        try:
            claims = jwt.decode(token, self._key, algorithms=list(ACCEPTED_ALGORITHMS), issuer=self.issuer,
                                leeway=self.leeway, options={"require": ["iss", "exp", "nbf"]})
        except jwt.PyJWTError as err:
            raise InvalidToken(str(err) or type(err).__name__) from err
        resource = claims.get("resource")
        params = claims.get("params")
        return Payload(
            operation=str(claims.get("operation") or ""),
            name=str(claims.get("name") or ""),
            namespace=str(claims.get("namespace") or ""),
            resource=dict(resource) if isinstance(resource, dict) else {},
            params={str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
        )


    def check(self, token: str) -> Payload | None:
        """The payload of a valid token, None for any invalid one (what the upload proxy answers 401 to)."""
        try:
            return self.validate(token)
        except InvalidToken:
            return None


def answer_token_request(body: Obj, namespace: str, issuer: TokenIssuer) -> Obj:
    """The created UploadTokenRequest: the request as sent, with `status.token` for `spec.pvcName` in `namespace`.

    Upstream issues a token for any name, even an empty one; a token for no PVC can only fail later, so an
    empty name is refused here. Whether the PVC exists is not checked (upstream neither): the proxy does that.
    """
    spec = body.get("spec")
    pvc = spec.get("pvcName") if isinstance(spec, dict) else None
    if not isinstance(pvc, str) or not pvc:
        raise InvalidTokenRequest("spec.pvcName", "Required value: the name of the PVC to upload to")
    answer = copy.deepcopy(body)
    answer["apiVersion"] = u.UPLOAD_TOKEN_API_VERSION
    answer["kind"] = u.UPLOAD_TOKEN_KIND
    meta = answer.setdefault("metadata", {})
    if isinstance(meta, dict) and namespace:
        meta.setdefault("namespace", namespace)
    answer["status"] = {"token": issuer.upload_token(pvc, namespace)}
    return answer


@dataclass(frozen=True)
class SigningKeys:
    private_key_pem: bytes
    public_key_pem: bytes




def ensure_signing_keys(directory: Path) -> SigningKeys:
    """The token signing key pair under `directory` (the cluster's pki dir): made once, kept afterwards."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private, public = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    if not private.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        write_atomic(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()), 0o600)
        public.unlink(missing_ok=True)
    if not public.exists():
        loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
        write_atomic(public, loaded.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return SigningKeys(private.read_bytes(), public.read_bytes())
