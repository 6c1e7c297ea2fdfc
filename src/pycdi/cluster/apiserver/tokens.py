"""Bearer tokens: random static tokens and RS256 ServiceAccount JWTs with kube's claims."""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"
# Claim key for a bound object kind, as kube's `kubernetes.io` private claims name them.
_BOUND_KINDS = {"Pod": "pod", "Secret": "secret", "Node": "node"}


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (static user tokens, upload tokens)."""
    return secrets.token_urlsafe(nbytes)


# Parsing (and for private keys, validating) an RSA key costs far more than one signature; the
# server verifies a token on every request, always with the same key.
@functools.lru_cache(maxsize=8)
def _rsa_private(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("ServiceAccount signing key must be RSA")
    return key


@functools.lru_cache(maxsize=8)
def _rsa_public(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("ServiceAccount verification key must be RSA")
    return key


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """kube's `kid`: unpadded base64url of the SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def issue_service_account_token(
    private_key_pem: bytes,
    *,
    namespace: str,
    name: str,
    uid: str,
    audiences: Sequence[str],
    expiration_seconds: int,
    issuer: str = DEFAULT_ISSUER,
    bound_object: Mapping[str, str] | None = None,
    now: float | None = None,
) -> tuple[str, datetime]:
    """A signed ServiceAccount token and its expiry (what TokenRequest's status reports).

    `bound_object` is {"kind": "Pod"|"Secret"|"Node", "name": ..., "uid": ...}; its claim is added
    under `kubernetes.io` as kube does for bound tokens.
    """
    if expiration_seconds <= 0:
        raise ValueError("expiration_seconds must be positive")
    key = _rsa_private(private_key_pem)
    issued = int(time.time() if now is None else now)
    expires = issued + int(expiration_seconds)
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
    if bound_object is not None:
        kind = bound_object.get("kind", "")
        claim = _BOUND_KINDS.get(kind)
        if claim is None:
            raise ValueError(f"cannot bind a token to kind {kind!r}")
        private[claim] = {"name": bound_object.get("name", ""), "uid": bound_object.get("uid", "")}
    claims: dict[str, Any] = {
        "aud": list(audiences),
        "exp": expires,
        "iat": issued,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
        "nbf": issued,
        "sub": f"{SA_PREFIX}{namespace}:{name}",
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id(key.public_key())})
    return token, datetime.fromtimestamp(expires, tz=UTC)


def verify_service_account_token(
    public_key_pem: bytes,
    token: str,
    *,
    audiences: Sequence[str] | None = None,
    now: float | None = None,
    issuer: str | None = None,
) -> dict[str, Any] | None:
    """The token's claims, or None if it is not a valid, current ServiceAccount token for `audiences`.

    `audiences` None skips the audience check; otherwise the token must carry at least one of them
    (kube's rule). `issuer`, when given, must match `iss`.
    """
    try:
        key = _rsa_public(public_key_pem)
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["RS256"],
            # Time and audience are checked below so that `now` can be injected.
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                     "require": ["exp", "iat", "sub"]},
        )
    except (jwt.PyJWTError, ValueError):
        return None
    current = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or current >= exp:
        return None
    if isinstance(nbf, int | float) and current < nbf:
        return None
    if issuer is not None and claims.get("iss") != issuer:
        return None
    if audiences is not None:
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(token_auds) & set(audiences):
            return None
    sub = claims.get("sub")
    private = claims.get("kubernetes.io")
    if not isinstance(sub, str) or not sub.startswith(SA_PREFIX) or not isinstance(private, dict):
        return None
    sa = private.get("serviceaccount")
    if not isinstance(sa, dict) or sub != f"{SA_PREFIX}{private.get('namespace')}:{sa.get('name')}":
        return None
    return claims
