"""The webhook's answer (upstream's AdmissionResponse result) and kube-apiserver's wrapping of a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cdiapi import goparse
from pycdi.cdiapi.webhook import DATAVOLUME_VALIDATE, admit_datavolume, error, rejection
from pycdi.cli.admission import webhook_denied


class EmptyLookup:
    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None


def test_rejection_joins_messages_each_after_a_space() -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "a", "field": "x"},
              {"reason": "FieldValueInvalid", "message": "b c", "field": "y"}]
    assert rejection(causes) == {"message": " a b c", "code": 422, "details": {"causes": causes}}


async def test_admit_allows_and_refuses() -> None:
    spec: dict[str, Any] = {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}
    good = {"metadata": {"name": "d", "namespace": "n"}, "spec": spec}
    assert await admit_datavolume(good, None, EmptyLookup()) is None
    bad = {"metadata": {"name": "d", "namespace": "n"}, "spec": {**spec, "source": {}}}
    result = await admit_datavolume(bad, None, EmptyLookup())
    assert result is not None and result["code"] == 422 and result["message"] == " Missing Data volume source"
    broken = {"metadata": {"name": "d", "namespace": "n"},
              "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "x"}}}}}
    result = await admit_datavolume(broken, None, EmptyLookup())
    assert result is not None and result["code"] == 400 and "details" not in result


def test_denial_is_wrapped_as_kube_apiserver_does() -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "Missing Data volume source", "field": "spec.source"}]
    err = webhook_denied(DATAVOLUME_VALIDATE, rejection(causes))
    assert err.code == 422
    assert err.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  '
                   "Missing Data volume source",
        "code": 422, "details": {"causes": causes},
    }  # no `reason`: the webhook gave none, and Status.reason is omitempty


def test_error_and_odd_results_are_wrapped() -> None:
    err = webhook_denied("w", error("boom"))
    assert (err.code, err.message, err.details) == (400, 'admission webhook "w" denied the request: boom', None)
    assert webhook_denied("w", {"code": 200}).code == 400  # never a success code with a refusal
    assert webhook_denied("w", {}).message == 'admission webhook "w" denied the request without explanation'
    by_reason = webhook_denied("w", {"reason": "Forbidden", "code": 403})
    assert by_reason.message == 'admission webhook "w" denied the request: Forbidden'
    assert by_reason.status()["reason"] == "Forbidden"


@pytest.mark.parametrize(("raw", "scheme", "host"), [
    ("http://example.com/a", "http", "example.com"),
    ("HTTPS://user:pw@example.com:8443/a?b#c", "https", "example.com:8443"),
    ("http://[::1]:80/x", "http", "[::1]:80"),
    ("http:opaque", "http", ""),
    ("/abs/path", "", ""),
])
def test_go_request_uri_parse(raw: str, scheme: str, host: str) -> None:
    parsed = goparse.parse(raw, via_request=True)
    assert (parsed.scheme, parsed.host) == (scheme, host)


@pytest.mark.parametrize("raw", ["", "relative/path", ":nothing", "http://a b/", "http://h:port/", "http://h/%4",
                                 "http://h/\x7f", "http://[::1/x"])
def test_go_request_uri_errors(raw: str) -> None:
    with pytest.raises(goparse.URLError):
        goparse.parse(raw, via_request=True)


def test_go_parse_allows_what_request_uri_refuses() -> None:
    assert goparse.parse("relative/path").path == "relative/path"
    assert goparse.parse("docker://quay.io/org/img:tag#frag").host == "quay.io"
    with pytest.raises(goparse.URLError):
        goparse.parse("a:b/c".replace("a:", "1a:"))  # no scheme, and a colon in the first segment


def test_checksum_parse() -> None:
    assert goparse.parse_checksum(" SHA1 : " + "A" * 40) == ("sha1", "a" * 40)
    with pytest.raises(ValueError, match="U\\+0020 ' '"):
        goparse.parse_checksum("md5:" + "a" * 15 + " " + "a" * 16)
