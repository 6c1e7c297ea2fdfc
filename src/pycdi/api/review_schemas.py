"""Schemas of the create-only review kinds (access, rules, token and self-subject reviews, TokenRequest)."""

from __future__ import annotations

import copy

from pycdi.api.meta_schemas import kind_schema
from pycdi.api.schema_dsl import Schema, arr, boolean, date_time, int64, map_of, obj, string


def _resource_attributes() -> Schema:
    requirement = obj({"key": string(), "operator": string(), "values": arr(string(), list_type="atomic")},
                      ["key", "operator"])
    selector = obj({"rawSelector": string(), "requirements": arr(requirement, list_type="atomic")})
    return obj({"fieldSelector": selector, "group": string(), "labelSelector": copy.deepcopy(selector),
                "name": string(), "namespace": string(), "resource": string(), "subresource": string(),
                "verb": string(), "version": string()})


def _access_spec(*, subject: bool) -> Schema:
    props: dict[str, Schema] = {"nonResourceAttributes": obj({"path": string(), "verb": string()}),
                                "resourceAttributes": _resource_attributes()}
    if subject:
        props.update({"extra": map_of(arr(string(), list_type="atomic")),
                      "groups": arr(string(), list_type="atomic"), "uid": string(), "user": string()})
    return obj(props)


def access_review(description: str, *, subject: bool) -> Schema:
    status = obj({"allowed": boolean(), "denied": boolean(), "evaluationError": string(), "reason": string()},
                 ["allowed"])
    return kind_schema(description, {"spec": _access_spec(subject=subject), "status": status}, ("spec",))


def rules_review() -> Schema:
    rule = {name: arr(string(), list_type="atomic") for name in ("apiGroups", "resourceNames", "resources",
                                                                   "verbs")}
    non_resource = {name: arr(string(), list_type="atomic") for name in ("nonResourceURLs", "verbs")}
    status = obj({"evaluationError": string(), "incomplete": boolean(),
                  "nonResourceRules": arr(obj(non_resource, ["verbs"]), list_type="atomic"),
                  "resourceRules": arr(obj(rule, ["verbs"]), list_type="atomic")},
                 ["resourceRules", "nonResourceRules", "incomplete"])
    return kind_schema("SelfSubjectRulesReview enumerates the actions the current user can perform.", {
        "spec": obj({"namespace": string()}), "status": status}, ("spec",))


def _user_info() -> Schema:
    return obj({"extra": map_of(arr(string(), list_type="atomic")), "groups": arr(string(), list_type="atomic"),
                "uid": string(), "username": string()})


def token_review() -> Schema:
    status = obj({"audiences": arr(string(), list_type="atomic"), "authenticated": boolean(),
                  "error": string(), "user": _user_info()})
    return kind_schema("TokenReview attempts to authenticate a token to a known user.", {
        "spec": obj({"audiences": arr(string(), list_type="atomic"), "token": string()}),
        "status": status}, ("spec",))


def self_subject_review() -> Schema:
    return kind_schema("SelfSubjectReview contains the user information the server has about the requester.", {
        "status": obj({"userInfo": _user_info()})})


def token_request() -> Schema:
    bound = obj({"apiVersion": string(), "kind": string(), "name": string(), "uid": string()})
    return kind_schema("TokenRequest requests a token for a given service account.", {
        "spec": obj({"audiences": arr(string(), list_type="atomic"), "boundObjectRef": bound,
                     "expirationSeconds": int64()}, ["audiences"]),
        "status": obj({"expirationTimestamp": date_time(), "token": string()}, ["token", "expirationTimestamp"]),
    }, ("spec",))
