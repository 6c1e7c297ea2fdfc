"""RFC 7386 merge patch and RFC 6902 JSON patch, with kube-apiserver's error codes."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.patching import PatchError, json_patch, merge_patch

# RFC 7386 appendix A (only the object-shaped targets/patches: objects are all we patch).
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386)
def test_merge_patch_rfc7386(target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == expected
    assert repr(target) == before  # the input is not modified


def test_merge_patch_labels_like_kubectl_label() -> None:
    obj = {"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}}
    out = merge_patch(obj, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert out["metadata"] == {"name": "x", "labels": {"b": "2", "c": "3"}}


@pytest.mark.parametrize("patch", [[{"a": 1}], "x", 3, None])
def test_merge_patch_non_object_is_400(patch: object) -> None:
    with pytest.raises(PatchError) as info:
        merge_patch({"a": 1}, patch)
    assert info.value.code == 400


# RFC 6902 appendix A examples that succeed.
RFC6902_OK: list[tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"a/b": {"m~n": 1}}, [{"op": "replace", "path": "/a~1b/m~0n", "value": 2}], {"a/b": {"m~n": 2}}),
    ({"foo": {"bar": 1}}, [{"op": "copy", "from": "/foo", "path": "/baz"}],
     {"foo": {"bar": 1}, "baz": {"bar": 1}}),
]


@pytest.mark.parametrize(("target", "ops", "expected"), RFC6902_OK)
def test_json_patch_rfc6902(target: dict[str, Any], ops: list[dict[str, Any]], expected: dict[str, Any]
                            ) -> None:
    assert json_patch(target, ops) == expected


def test_json_patch_copy_is_deep() -> None:
    out = json_patch({"a": {"x": [1]}}, [{"op": "copy", "from": "/a", "path": "/b"},
                                         {"op": "add", "path": "/b/x/-", "value": 2}])
    assert out == {"a": {"x": [1]}, "b": {"x": [1, 2]}}


# RFC 6902 failures, all 422 "Invalid" with kube's generic message.
RFC6902_FAIL: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),  # A.12: parent missing
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),  # A.9
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),  # A.15: string vs number
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/3", "value": 1}]),  # index out of range
    ({"foo": ["bar"]}, [{"op": "remove", "path": "/foo/01"}]),  # leading zero
    ({"foo": 1}, [{"op": "remove", "path": "/nope"}]),
    ({"foo": 1}, [{"op": "replace", "path": "/nope", "value": 2}]),
    ({"foo": 1}, [{"op": "move", "from": "/nope", "path": "/x"}]),
    ({"foo": {"a": 1}}, [{"op": "move", "from": "/foo", "path": "/foo/a/b"}]),
    ({"foo": 1}, [{"op": "frobnicate", "path": "/foo"}]),
    ({"foo": 1}, [{"op": "add", "value": 1}]),  # missing path
    ({"foo": 1}, [{"op": "add", "path": "foo", "value": 1}]),  # pointer without leading slash
    ({"foo": 1}, [{"op": "add", "path": "/a~2b", "value": 1}]),  # bad escape
    ({"foo": True}, [{"op": "test", "path": "/foo", "value": 1}]),  # true is not 1
]


@pytest.mark.parametrize(("target", "ops"), RFC6902_FAIL)
def test_json_patch_failures_are_422(target: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchError) as info:
        json_patch(target, ops)
    err = info.value
    assert err.code == 422
    assert err.message == "the server rejected our request due to an error in our request"
    status = err.api_error().status()
    assert status["code"] == 422 and status["reason"] == "Invalid" and status["details"] == {}


def test_json_patch_is_atomic() -> None:
    target: dict[str, Any] = {"metadata": {"resourceVersion": "5"}, "spec": {"a": 1}}
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "replace", "path": "/spec/a", "value": 2},
                            {"op": "test", "path": "/metadata/resourceVersion", "value": "4"}])
    assert target["spec"]["a"] == 1


def test_kopf_finalizer_patch_with_resource_version_test() -> None:
    obj = {"metadata": {"name": "dv", "resourceVersion": "104"}}
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "104"},
           {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]}]
    out = json_patch(obj, ops)
    assert out["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": "103"},
             {"op": "remove", "path": "/metadata/finalizers"}]
    with pytest.raises(PatchError) as info:
        json_patch(out, stale)
    assert info.value.code == 422 and "test failed" in info.value.detail


@pytest.mark.parametrize("ops", [{"op": "add"}, "nope", None, [1], [["op"]]])
def test_json_patch_malformed_is_400(ops: object) -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, ops)
    assert info.value.code == 400
    assert info.value.api_error().reason == "BadRequest"


def test_json_patch_too_many_operations() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * 10001
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, ops)
    assert info.value.code == 413
    assert "maximum operations in a JSON patch is 10000, got 10001" in info.value.message
    assert json_patch({"a": 1}, ops[:10000]) == {"a": 1}


def test_json_patch_replace_whole_document_must_stay_object() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])
    assert info.value.code == 422
