"""Clone authorization (datavolume-mutate): the SubjectAccessReviews asked, upstream's refusal, the signed token.

The reviewer here answers from a fixed set of allowed (user, namespace, resource) triples, the way RBAC would;
the real server's answers are exercised by tests/functional/test_clone.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pycdi.api.clonetoken import ClonePayload, CloneTokens, InvalidCloneToken
from pycdi.cdiapi.clone_authorization import Requester, admit

Obj = dict[str, Any]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
TOKENS = CloneTokens.from_private_key(KEY)


class Reviewer:
    def __init__(self, *allowed: tuple[str, str, str]) -> None:
        self.allowed_set = set(allowed)
        self.asked: list[Obj] = []

    async def allowed(self, review: Obj) -> bool:
        self.asked.append(review)
        spec = review["spec"]
        ra = spec["resourceAttributes"]
        resource = ra["resource"] + (f"/{ra['subresource']}" if ra.get("subresource") else "")
        return (spec["user"], ra["namespace"], resource) in self.allowed_set


class Lookup:
    def __init__(self, *namespaces: str) -> None:
        self.namespaces = set(namespaces)

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        return {"metadata": {"name": name}} if resource == "namespaces" and name in self.namespaces else None


def dv(source_ns: str | None, **annotations: str) -> Obj:
    pvc = {"name": "disk"} | ({"namespace": source_ns} if source_ns else {})
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "copy", "namespace": "dst", "annotations": annotations},
            "spec": {"source": {"pvc": pvc}, "storage": {}}}


def run(obj: Obj, reviewer: Reviewer, *, create: bool = True, user: str = "alice") -> tuple[Obj | None, Obj]:
    return asyncio.run(admit(obj, create=create, namespace="dst", user=Requester(user, ("system:authenticated",)),
                             reviewer=reviewer, lookup=Lookup("src", "dst"), tokens=TOKENS))


def test_other_namespace_without_permission_is_refused_with_upstreams_message() -> None:
    reviewer = Reviewer()
    refusal, _ = run(dv("src"), reviewer)
    assert refusal is not None and refusal["code"] == 422
    assert refusal["message"] == " User alice has insufficient permissions in clone source namespace src"
    assert refusal["details"]["causes"][0]["field"] == "spec.source.PVC.namespace"
    # Both reviews were asked, in the source namespace, naming the source claim.
    asked = [r["spec"]["resourceAttributes"] for r in reviewer.asked]
    assert asked == [
        {"namespace": "src", "verb": "create", "group": "cdi.kubevirt.io", "resource": "datavolumes",
         "subresource": "source", "name": "disk"},
        {"namespace": "src", "verb": "create", "group": "", "resource": "pods", "name": "disk"}]
    assert reviewer.asked[0]["spec"]["groups"] == ["system:authenticated"]


@pytest.mark.parametrize("resource", ["datavolumes/source", "pods"])
def test_either_permission_admits_and_a_token_names_source_and_target(resource: str) -> None:
    refusal, admitted = run(dv("src"), Reviewer(("alice", "src", resource)))
    assert refusal is None
    token = admitted["metadata"]["annotations"]["cdi.kubevirt.io/storage.clone.token"]
    payload = TOKENS.check(token, source_ns="src", source="disk", target_ns="dst", target="copy")
    assert payload.operation == "Clone"
    with pytest.raises(InvalidCloneToken, match="invalid target"):
        TOKENS.check(token, source_ns="src", source="disk", target_ns="dst", target="other")


def test_same_namespace_needs_no_review_but_gets_a_token() -> None:
    reviewer = Reviewer()
    refusal, admitted = run(dv(None), reviewer)
    assert refusal is None and not reviewer.asked
    assert "cdi.kubevirt.io/storage.clone.token" in admitted["metadata"]["annotations"]


def test_an_update_is_checked_again_but_gets_no_new_token() -> None:
    refusal, _ = run(dv("src"), Reviewer(), create=False)
    assert refusal is not None
    refusal, admitted = run(dv("src"), Reviewer(("alice", "src", "pods")), create=False)
    assert refusal is None and "cdi.kubevirt.io/storage.clone.token" not in admitted["metadata"]["annotations"]


def test_a_forged_token_is_replaced() -> None:
    _, admitted = run(dv(None, **{"cdi.kubevirt.io/storage.clone.token": "forged"}), Reviewer())
    assert admitted["metadata"]["annotations"]["cdi.kubevirt.io/storage.clone.token"] != "forged"


def test_prepopulated_data_volumes_pass_without_a_token() -> None:
    refusal, admitted = run(dv("src", **{"cdi.kubevirt.io/storage.prePopulated": "copy"}), Reviewer())
    assert refusal is None and "cdi.kubevirt.io/storage.clone.token" not in admitted["metadata"]["annotations"]


def test_missing_source_namespace_is_an_error() -> None:
    refusal, _ = run(dv("nowhere"), Reviewer())
    assert refusal == {"message": 'namespaces "nowhere" not found', "code": 400}


def test_not_a_clone_is_left_alone() -> None:
    obj = {"metadata": {"name": "x", "namespace": "dst"}, "spec": {"source": {"blank": {}}}}
    assert run(obj, Reviewer()) == (None, obj)


def test_tokens_expire_and_the_extended_one_is_bound_to_a_uid() -> None:
    payload = ClonePayload("disk", "src", params={"targetNamespace": "dst", "targetName": "copy"})
    old = TOKENS.issue(payload, now=time.time() - 3600)
    with pytest.raises(InvalidCloneToken, match="expired"):
        TOKENS.validate(old)
    extended = TOKENS.issue(payload.with_params(uid="u-1"), extended=True)
    with pytest.raises(InvalidCloneToken):
        TOKENS.validate(extended)  # a long-lived token is not a short one (issuer)
    assert TOKENS.check(extended, source_ns="src", source="disk", target_ns="dst", target="copy", uid="u-1",
                        extended=True).params["uid"] == "u-1"
    with pytest.raises(InvalidCloneToken, match="invalid uid"):
        TOKENS.check(extended, source_ns="src", source="disk", target_ns="dst", target="copy", uid="u-2",
                     extended=True)
    other = CloneTokens.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)
                                         .private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    with pytest.raises(InvalidCloneToken, match="Signature"):
        other.validate(TOKENS.issue(payload))
