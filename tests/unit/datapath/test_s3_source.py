"""The s3 source's pure parts: URL parsing (upstream's path style, AWS forms), signing region, error classes."""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions
import pytest

from pycdi.datapath.errors import PermanentError, TransientError
from pycdi.datapath.sources import s3
from pycdi.datapath.sources.s3 import S3Location, classify, parse_url, region_of_host

LOC = S3Location("https://minio.example:9000", "minio", "images", "dir/disk.qcow2", "path")


@pytest.mark.parametrize(("url", "expected"), [
    # Upstream's form: path style, bucket = first segment, key = the rest; http stays http.
    ("http://minio:9000/bucket-1/object-1", S3Location("http://minio:9000", "minio", "bucket-1", "object-1", "path")),
    ("https://minio-service.default:9000/Bucket1/Folder1/Object.tmp",
     S3Location("https://minio-service.default:9000", "minio-service", "Bucket1", "Folder1/Object.tmp", "path")),
    ("https://127.0.0.1:9000/b/k", S3Location("https://127.0.0.1:9000", "us-east-1", "b", "k", "path")),
    ("http://[::1]:9000/b/k", S3Location("http://[::1]:9000", "us-east-1", "b", "k", "path")),
    # Slashes around the path are trimmed (upstream's strings.Trim), inner ones kept; escapes are decoded.
    ("https://ceph.lan/b//disk%20one.img/", S3Location("https://ceph.lan", "ceph", "b", "/disk one.img", "path")),
    # AWS path style: the region from the host, botocore picks the addressing.
    ("https://s3.eu-west-3.amazonaws.com/my-bucket/images/fedora.qcow2",
     S3Location("https://s3.eu-west-3.amazonaws.com", "eu-west-3", "my-bucket", "images/fedora.qcow2", "auto")),
    ("https://s3.amazonaws.com/my-bucket/x.img",
     S3Location("https://s3.amazonaws.com", "us-east-1", "my-bucket", "x.img", "auto")),
    # AWS virtual-hosted style: the bucket is in the host (upstream would take "images" for the bucket).
    ("https://my.bucket.s3.us-west-2.amazonaws.com/images/fedora.qcow2",
     S3Location("https://s3.us-west-2.amazonaws.com", "us-west-2", "my.bucket", "images/fedora.qcow2", "auto")),
    ("https://my-bucket.s3-us-gov-west-1.amazonaws.com/x.img",
     S3Location("https://s3-us-gov-west-1.amazonaws.com", "us-gov-west-1", "my-bucket", "x.img", "auto")),
    ("https://b.s3.dualstack.cn-north-1.amazonaws.com.cn/x.img",
     S3Location("https://s3.dualstack.cn-north-1.amazonaws.com.cn", "cn-north-1", "b", "x.img", "auto")),
    # s3://bucket/key: AWS's own endpoint, the default region (upstream would dial https://bucket).
    ("s3://my-bucket/dir/x.img", S3Location(None, "us-east-1", "my-bucket", "dir/x.img", "auto")),
])  # fmt: skip
def test_parse_url(url: str, expected: S3Location) -> None:
    assert parse_url(url) == expected


def test_s3_scheme_takes_the_region_given() -> None:
    assert parse_url("s3://b/k", default_region="ap-south-1").region == "ap-south-1"


@pytest.mark.parametrize(("url", "message"), [
    ("", 'endpoint "IMPORTER_ENDPOINT" is missing or blank'),
    ("https://minio:9000/bucket-only", "names no object"),
    ("https://minio:9000/", "names no object"),
    ("s3://bucket", "names no object"),
    ("minio:9000/bucket/key", "unsupported s3 URL"),
    ("ftp://host/b/k", "unsupported s3 URL"),
    ("http://host:99999/b/k", "unable to parse endpoint"),
])  # fmt: skip
def test_parse_url_refuses(url: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        parse_url(url)


@pytest.mark.parametrize(("host", "region"), [
    # upstream's extractRegion table, where botocore can sign for the same region
    ("minio", "minio"), ("minio-service.default", "minio-service"), ("s3.us-east-1.amazonaws.com", "us-east-1"),
    ("localhost", "localhost"), ("::1", "us-east-1"), ("[::1]", "us-east-1"), ("minio_svc", "us-east-1"),
    ("", "us-east-1"),
    # upstream gives "127", which botocore refuses to sign for
    ("127.0.0.1", "us-east-1"),
    # AWS hosts that upstream's `s3\.(.+)\.amazonaws\.com` gets wrong ("s3", "dualstack.us-west-2")
    ("s3.amazonaws.com", "us-east-1"), ("s3.dualstack.us-west-2.amazonaws.com", "us-west-2"),
    ("s3-fips.us-east-2.amazonaws.com", "us-east-2"), ("bucket.s3.ap-northeast-1.amazonaws.com", "ap-northeast-1"),
])  # fmt: skip
def test_region_of_host(host: str, region: str) -> None:
    assert region_of_host(host) == region


def client_error(code: str, status: int, message: str = "") -> botocore.exceptions.ClientError:
    """The exception botocore raises for an S3 error answer (what its parser builds from the XML body)."""
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetObject")  # type: ignore[arg-type]


def test_missing_key_names_bucket_and_key() -> None:
    err = classify(client_error("NoSuchKey", 404, "The specified key does not exist."), LOC, LOC.endpoint_url or "")
    assert isinstance(err, PermanentError)
    assert str(err) == ('could not get s3 object "images/dir/disk.qcow2" from https://minio.example:9000: '
                        'no object "dir/disk.qcow2" in bucket "images" (NoSuchKey: The specified key does not exist.)')


def test_missing_bucket_names_it() -> None:
    err = classify(client_error("NoSuchBucket", 404, "The specified bucket does not exist"), LOC, "e")
    assert isinstance(err, PermanentError) and 'bucket "images" does not exist' in str(err)


def test_bare_404_from_a_head_like_answer_is_missing() -> None:
    err = classify(client_error("404", 404, "Not Found"), LOC, "e")
    assert isinstance(err, PermanentError) and 'no object "dir/disk.qcow2" in bucket "images"' in str(err)


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
                                  "ExpiredToken"])
def test_refused_access_is_permanent(code: str) -> None:
    err = classify(client_error(code, 403, "nope"), LOC, "e")
    assert isinstance(err, PermanentError)
    assert "access refused" in str(err) and code in str(err) and "secretRef" in str(err)
    anonymous = classify(client_error(code, 403), LOC, "e", signed=False)
    assert "no credentials were given" in str(anonymous)


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503),
                                              ("", 502), ("RequestTimeout", 400), ("TooManyRequests", 429)])
def test_server_trouble_is_transient(code: str, status: int) -> None:
    err = classify(client_error(code, status, "try later"), LOC, "e")
    assert isinstance(err, TransientError) and "images/dir/disk.qcow2" in str(err)


@pytest.mark.parametrize("code", ["PermanentRedirect", "AuthorizationHeaderMalformed", "InvalidObjectState",
                                  "InvalidBucketName", "InvalidArgument"])
def test_other_client_errors_are_permanent(code: str) -> None:
    assert isinstance(classify(client_error(code, 400, "x"), LOC, "e"), PermanentError)


def test_tls_verification_failure_is_permanent() -> None:
    reason = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)"
    err = classify(botocore.exceptions.SSLError(endpoint_url="https://h/b/k", error=reason), LOC, "https://h")
    assert isinstance(err, PermanentError) and str(err).endswith(f"TLS verification of https://h failed: {reason}")


@pytest.mark.parametrize("exc", [
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://h"),
    botocore.exceptions.ConnectionClosedError(endpoint_url="http://h"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="http://h"),
    botocore.exceptions.ResponseStreamingError(error=ConnectionResetError(104, "Connection reset by peer")),
    botocore.exceptions.IncompleteReadError(actual_bytes=10, expected_bytes=20),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError("timed out"),
])  # fmt: skip
def test_link_failures_are_transient(exc: BaseException) -> None:
    err = classify(exc, LOC, "e")
    assert isinstance(err, TransientError) and "images/dir/disk.qcow2" in str(err)


def test_half_a_secret_is_refused() -> None:
    with pytest.raises(PermanentError, match="must be set together or not at all"):
        s3.from_env({"IMPORTER_ENDPOINT": "http://minio:9000/b/k", "IMPORTER_ACCESS_KEY_ID": "only"}, [], False)


def test_no_secret_and_no_ambient_identity_is_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    source = s3.from_env({"IMPORTER_ENDPOINT": "http://minio:9000/b/k"}, [], False)
    assert not source.signed
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    assert s3.from_env({"IMPORTER_ENDPOINT": "http://minio:9000/b/k"}, [], False).signed


def test_node_credential_files_are_not_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker on the node must not pick up the node's ~/.aws (a pod has its own, empty, filesystem)."""
    home = tmp_path
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = node\naws_secret_access_key = s\n")
    monkeypatch.setenv("HOME", str(home))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert not s3.from_env({"IMPORTER_ENDPOINT": "http://minio:9000/b/k"}, [], False).signed
