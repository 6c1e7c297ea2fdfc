"""Upload tokens: upstream's claims and algorithm, 5 minute life, and every way a token is refused."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pycdi.cdiapi.uploadtoken import (
    InvalidToken,
    InvalidTokenRequest,
    Payload,
    TokenIssuer,
    TokenValidator,
    answer_token_request,
    ensure_signing_keys,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[TokenIssuer, TokenValidator]:
    pair = ensure_signing_keys(tmp_path_factory.mktemp("pki"))
    return TokenIssuer(pair.private_key_pem), TokenValidator(pair.public_key_pem)


def test_token_carries_upstreams_claims_signed_ps256(keys: tuple[TokenIssuer, TokenValidator]) -> None:
    issuer, validator = keys
    before = int(time.time())
    token = issuer.upload_token("disk", "team")
    assert jwt.get_unverified_header(token)["alg"] == "PS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["operation"] == "Upload"
    assert (claims["name"], claims["namespace"]) == ("disk", "team")
    assert claims["resource"] == {"group": "", "version": "v1", "resource": "persistentvolumeclaims"}
    assert claims["iss"] == "cdi-apiserver"
    assert claims["iat"] == claims["nbf"] and before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 300
    payload = validator.validate(token)
    assert (payload.operation, payload.name, payload.namespace, payload.is_pvc) == ("Upload", "disk", "team", True)


def test_expired_token_is_refused_after_the_leeway(keys: tuple[TokenIssuer, TokenValidator]) -> None:
    issuer, validator = keys
    # Expired 5 s ago: still inside upstream's 10 s of leeway for clock skew.
    assert validator.check(issuer.issue(Payload("Upload", "d", "n"), now=time.time() - 305)) is not None
    with pytest.raises(InvalidToken, match="expired"):
        validator.validate(issuer.issue(Payload("Upload", "d", "n"), now=time.time() - 320))


def test_not_yet_valid_token_is_refused(keys: tuple[TokenIssuer, TokenValidator]) -> None:
    issuer, validator = keys
    with pytest.raises(InvalidToken):
        validator.validate(issuer.issue(Payload("Upload", "d", "n"), now=time.time() + 60))


def test_forged_tampered_and_foreign_tokens_are_refused(keys: tuple[TokenIssuer, TokenValidator],
                                                        tmp_path: Path) -> None:
    issuer, validator = keys
    other = TokenIssuer(ensure_signing_keys(tmp_path).private_key_pem)
    assert validator.check(other.upload_token("disk", "team")) is None
    good = issuer.upload_token("disk", "team")
    head, body, sig = good.split(".")
    tampered_body = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(b'"disk"', b'"other"')).decode()
    assert validator.check(f"{head}.{tampered_body}.{sig}") is None
    assert validator.check("not-a-token") is None
    # Unsigned ("alg": "none") and HMAC tokens are never accepted, whatever they claim.
    claims = {**Payload("Upload", "disk", "team").claims(), "iss": "cdi-apiserver", "exp": int(time.time()) + 60,
              "nbf": int(time.time())}
    assert validator.check(jwt.encode(claims, None, algorithm="none")) is None
    assert validator.check(jwt.encode(claims, "secret-key-of-enough-length-32b!", algorithm="HS256")) is None
    other_issuer = TokenIssuer(ensure_signing_keys(Path(tmp_path / "x")).private_key_pem, issuer="someone")
    assert validator.check(other_issuer.upload_token("disk", "team")) is None


def test_rs256_tokens_are_accepted(keys: tuple[TokenIssuer, TokenValidator], tmp_path: Path) -> None:
    pair = ensure_signing_keys(tmp_path)
    key = serialization.load_pem_private_key(pair.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = int(time.time())
    token = jwt.encode({**Payload("Upload", "d", "n").claims(), "iss": "cdi-apiserver", "iat": now, "nbf": now,
                        "exp": now + 300}, key, algorithm="RS256")
    assert TokenValidator(pair.public_key_pem).validate(token).name == "d"


def test_answer_fills_status_token_and_keeps_the_request(keys: tuple[TokenIssuer, TokenValidator]) -> None:
    issuer, validator = keys
    body = {"apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
            "metadata": {"generateName": "token-for-virtctl-"}, "spec": {"pvcName": "disk"}}
    answer = answer_token_request(body, "team", issuer)
    assert answer["spec"] == {"pvcName": "disk"}
    assert answer["metadata"] == {"generateName": "token-for-virtctl-", "namespace": "team"}
    payload = validator.validate(answer["status"]["token"])
    assert (payload.name, payload.namespace) == ("disk", "team")
    assert "status" not in body  # the request is not changed in place
    for spec in ({}, {"pvcName": ""}, {"pvcName": 3}):
        with pytest.raises(InvalidTokenRequest) as err:
            answer_token_request({**body, "spec": spec}, "team", issuer)
        assert err.value.field == "spec.pvcName"


def test_signing_keys_are_made_once_and_private(tmp_path: Path) -> None:
    first = ensure_signing_keys(tmp_path)
    assert ensure_signing_keys(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "upload-signing.key").stat().st_mode) == 0o600
    (tmp_path / "upload-signing.pub").unlink()
    assert ensure_signing_keys(tmp_path).public_key_pem == first.public_key_pem
