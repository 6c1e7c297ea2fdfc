"""Tests for random tokens and ServiceAccount JWT issuance/verification."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pycdi.cluster.apiserver.tokens import (
    issue_service_account_token,
    key_id,
    random_token,
    verify_service_account_token,
)

NOW = 1_700_000_000.0


def _keypair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv, pub


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return _keypair()


def _issue(priv: bytes, **kw: Any) -> tuple[str, datetime]:
    args: dict[str, Any] = {
        "namespace": "ns1",
        "name": "builder",
        "uid": "u-1",
        "audiences": ["api"],
        "expiration_seconds": 3600,
        "now": NOW,
    }
    args.update(kw)
    return issue_service_account_token(priv, **args)


def test_random_token() -> None:
    a, b = random_token(), random_token()
    assert a != b and len(a) >= 43
    assert all(c.isalnum() or c in "-_" for c in a)
    assert len(random_token(8)) == 11


def test_claims_as_kube(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    token, expires = _issue(priv, bound_object={"kind": "Pod", "name": "p", "uid": "pod-uid"})
    assert expires == datetime.fromtimestamp(NOW + 3600, tz=UTC)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == key_id(serialization.load_pem_public_key(pub))  # type: ignore[arg-type]
    # kid: base64url, unpadded, of a SHA-256 (32 bytes -> 43 chars)
    assert len(header["kid"]) == 43 and len(base64.urlsafe_b64decode(header["kid"] + "=")) == 32
    claims = verify_service_account_token(pub, token, audiences=["api"], now=NOW + 1)
    assert claims is not None
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["sub"] == "system:serviceaccount:ns1:builder"
    assert claims["aud"] == ["api"]
    assert claims["iat"] == claims["nbf"] == int(NOW) and claims["exp"] == int(NOW) + 3600
    assert claims["jti"]
    assert claims["kubernetes.io"] == {
        "namespace": "ns1",
        "serviceaccount": {"name": "builder", "uid": "u-1"},
        "pod": {"name": "p", "uid": "pod-uid"},
    }


def test_unbound_and_secret_bound(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    token, _ = _issue(priv)
    claims = verify_service_account_token(pub, token, now=NOW)
    assert claims is not None and set(claims["kubernetes.io"]) == {"namespace", "serviceaccount"}
    token, _ = _issue(priv, bound_object={"kind": "Secret", "name": "s", "uid": "s-uid"})
    claims = verify_service_account_token(pub, token, now=NOW)
    assert claims is not None and claims["kubernetes.io"]["secret"] == {"name": "s", "uid": "s-uid"}
    with pytest.raises(ValueError):
        _issue(priv, bound_object={"kind": "ConfigMap", "name": "c", "uid": "x"})
    with pytest.raises(ValueError):
        _issue(priv, expiration_seconds=0)


def test_jti_unique(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    a = verify_service_account_token(pub, _issue(priv)[0], now=NOW)
    b = verify_service_account_token(pub, _issue(priv)[0], now=NOW)
    assert a is not None and b is not None and a["jti"] != b["jti"]


@pytest.mark.parametrize(
    ("now", "audiences", "ok"),
    [
        (NOW, ["api"], True),
        (NOW + 3599, ["api"], True),
        (NOW + 3600, ["api"], False),  # expired exactly at exp
        (NOW - 10, ["api"], False),  # not yet valid
        (NOW, ["other"], False),  # wrong audience
        (NOW, ["other", "api"], True),  # any overlap is enough
        (NOW, None, True),  # audience not checked
    ],
)
def test_verify_time_and_audience(
    keys: tuple[bytes, bytes], now: float, audiences: list[str] | None, ok: bool
) -> None:
    priv, pub = keys
    token, _ = _issue(priv)
    assert (verify_service_account_token(pub, token, audiences=audiences, now=now) is not None) is ok


def test_verify_rejects_forgeries(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    other_priv, _ = _keypair()
    forged, _ = _issue(other_priv)
    assert verify_service_account_token(pub, forged, now=NOW) is None
    token, _ = _issue(priv)
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    tampered_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert verify_service_account_token(pub, f"{head}.{tampered_body}.{sig}", now=NOW) is None
    assert verify_service_account_token(pub, "not-a-jwt", now=NOW) is None
    # HS256 signed with the public key (the classic alg confusion) must not pass
    hs = jwt.encode(
        {"sub": "system:serviceaccount:a:b", "exp": NOW + 10, "iat": NOW}, "k" * 32, algorithm="HS256"
    )
    assert verify_service_account_token(pub, hs, now=NOW) is None
    # a well-signed token that is not a ServiceAccount token
    plain = jwt.encode(
        {"sub": "alice", "exp": int(NOW) + 10, "iat": int(NOW)},
        priv,
        algorithm="RS256",
    )
    assert verify_service_account_token(pub, plain, now=NOW) is None


def test_issuer_check(keys: tuple[bytes, bytes]) -> None:
    priv, pub = keys
    token, _ = _issue(priv, issuer="https://pycdi.local")
    assert verify_service_account_token(pub, token, now=NOW, issuer="https://pycdi.local") is not None
    assert (
        verify_service_account_token(
            pub, token, now=NOW, issuer="https://kubernetes.default.svc.cluster.local"
        )
        is None
    )
