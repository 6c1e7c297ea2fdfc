"""S3 source on botocore: the object a URL names, streamed by a signed GET, and a presigned URL for nbdkit."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

from ..errors import DataPathError, PermanentError, TransientError
from ..tls import read_cert_dir, ssl_context, system_bundle
from .base import Probe
from .http import STALL_SECONDS, HttpConfig

log = logging.getLogger(__name__)

#: Upstream's signing region when none can be derived from the endpoint (AWS's own default as well).
DEFAULT_REGION = "us-east-1"
#: How long the presigned URL nbdkit reads stays valid. nbdkit is only chosen on a fast link (DESIGN §6), where
#: 12 hours is terabytes; the URL shows in nbdkit's command line on the node, so it should not outlive the import
#: by much (SigV4 allows at most 7 days).
PRESIGN_SECONDS = 12 * 3600
#: botocore's own retries (standard mode: 5xx, throttling, connection errors, with backoff) before an error is
#: reported; the controller's pod restarts retry transient errors again after that.
ATTEMPTS = 3
CONNECT_TIMEOUT = 30.0
READ_CHUNK = 1 << 20

#: AWS's S3 hosts: [bucket.]s3[-fips][.dualstack][.region | -region].amazonaws.com[.cn]; the bucket is there in
#: virtual-hosted URLs. Upstream finds the region with `s3\.(.+)\.amazonaws\.com` and never a bucket in the host.
_AWS_HOST = re.compile(
    r"^(?:(?P<bucket>.+)\.)?s3(?:-fips)?(?:[.-]dualstack)?(?:[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?"
    r"\.amazonaws\.com(?:\.cn)?$"
)
#: A region botocore signs for: one DNS label, not all digits. Upstream accepts a little more ("127" from
#: 127.0.0.1), which botocore refuses; those fall back to the default region.
_BOTOCORE_REGION = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")

#: Credential sources that read files of the node (the agent's HOME, /etc/boto.cfg): a pod sees none of them.
_FILE_PROVIDERS = ("boto-config", "ec2-credentials-file")

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound", "404"})
_DENIED_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled", "AccountProblem",
    "InvalidToken", "ExpiredToken", "InvalidSecurity", "InvalidPayer", "UnauthorizedAccess",
})  # fmt: skip
_TRANSIENT_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException",
    "RequestThrottled", "TooManyRequests", "BandwidthLimitExceeded", "OperationAborted",
})  # fmt: skip


@dataclass(frozen=True)
class S3Location:
    """Where an object is: the endpoint (None: AWS's own for the region), signing region, bucket and key."""

    endpoint_url: str | None
    region: str
    bucket: str
    key: str
    #: "path" (bucket in the path, as upstream always does: S3-compatible servers) or "auto" (AWS: botocore
    #: chooses virtual-hosted addressing where the bucket name allows it).
    addressing: str

    @property
    def object_name(self) -> str:
        return f"{self.bucket}/{self.key}"


def region_of_host(host: str) -> str:
    """The signing region an endpoint host implies (upstream's extractRegion, made right for AWS's own hosts).

    AWS hosts give their region (us-east-1 for the global `s3.amazonaws.com`, where upstream signs for "s3").
    Other hosts give their first DNS label, as upstream: S3-compatible servers mostly accept any region, and a
    server that checks it works with upstream only with that label. A label botocore cannot sign for (an IP
    address's "127", an IPv6 address) falls back to us-east-1."""
    host = host.strip("[]")
    aws = _AWS_HOST.match(host.lower())
    if aws:
        return aws["region"] or DEFAULT_REGION
    label = host.split(".")[0] if ":" not in host else ""  # an IPv6 address has no label
    if _BOTOCORE_REGION.match(label):
        return label
    return DEFAULT_REGION


def parse_url(url: str, default_region: str = DEFAULT_REGION) -> S3Location:
    """Endpoint, bucket and key from a DataVolume's `s3.url`.

    - `http(s)://host[:port]/bucket/path/to/object`: path style, as upstream (an http URL keeps http).
    - `https://bucket.s3.<region>.amazonaws.com/path/to/object`: AWS virtual-hosted style (upstream would take
      the first path segment for the bucket).
    - `s3://bucket/path/to/object`: AWS, signing region `default_region` (AWS_REGION); botocore follows S3's
      redirect when the bucket is elsewhere (upstream would take "bucket" for the endpoint's host).
    Leading and trailing slashes of the key are dropped, as upstream does; the query is ignored, as upstream."""
    if not url:
        raise PermanentError('endpoint "IMPORTER_ENDPOINT" is missing or blank')
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as err:
        raise PermanentError(f"unable to parse endpoint {url!r}: {err}") from err
    scheme = parts.scheme.lower()
    path = urllib.parse.unquote(parts.path).strip("/")
    if scheme == "s3":
        location = S3Location(None, default_region, parts.netloc, path, "auto")
    elif scheme in ("http", "https") and host:
        netloc = f"[{host}]" if ":" in host else host
        suffix = f":{port}" if port else ""
        aws = _AWS_HOST.match(host)
        if aws and aws["bucket"]:
            endpoint = f"{scheme}://{host[len(aws['bucket']) + 1:]}{suffix}"
            location = S3Location(endpoint, region_of_host(host), aws["bucket"], path, "auto")
        else:
            bucket, _, key = path.partition("/")
            location = S3Location(f"{scheme}://{netloc}{suffix}", region_of_host(host), bucket, key,
                                  "auto" if aws else "path")
    else:
        raise PermanentError(
            f"unsupported s3 URL {url!r}: expected https://host[:port]/bucket/path/to/object, http://... "
            "or s3://bucket/path/to/object"
        )
    if not location.bucket or not location.key:
        raise PermanentError(f"the s3 URL {url!r} names no object: expected a bucket and an object key in it")
    return location


def _error_code(err: botocore.exceptions.ClientError) -> tuple[str, str, int]:
    error = err.response.get("Error") or {}
    meta: Mapping[str, Any] = err.response.get("ResponseMetadata") or {}
    return str(error.get("Code") or ""), str(error.get("Message") or ""), int(meta.get("HTTPStatusCode") or 0)


def classify(err: BaseException, location: S3Location, endpoint: str, signed: bool = True) -> DataPathError:
    """A botocore failure as the typed error the controller acts on, naming the bucket and key."""
    if isinstance(err, DataPathError):
        return err
    what = f'could not get s3 object "{location.object_name}" from {endpoint}'
    if isinstance(err, botocore.exceptions.ClientError):
        code, message, status = _error_code(err)
        detail = f"{code}: {message}" if message and message != code else (code or f"HTTP {status}")
        if code == "NoSuchKey" or (code in ("404", "NotFound") and status == 404):
            return PermanentError(f'{what}: no object "{location.key}" in bucket "{location.bucket}" ({detail})')
        if code == "NoSuchBucket":
            return PermanentError(f'{what}: bucket "{location.bucket}" does not exist ({detail})')
        if code in _MISSING_CODES:
            return PermanentError(f"{what}: not found ({detail})")
        if code in _DENIED_CODES or status in (401, 403):
            hint = ("check accessKeyId and secretKey in the DataVolume's secretRef" if signed
                    else "no credentials were given (no secretRef) and anonymous access is not allowed")
            return PermanentError(f"{what}: access refused ({detail}); {hint}")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
            return PermanentError(f"{what}: the bucket is not served at this endpoint or region ({detail})")
        if code == "InvalidObjectState":
            return PermanentError(f"{what}: the object is archived and must be restored first ({detail})")
        if code in _TRANSIENT_CODES or status >= 500 or status in (408, 429):
            return TransientError(f"{what}: {detail}")
        return PermanentError(f"{what}: {detail}")
    if isinstance(err, botocore.exceptions.SSLError):
        reason = str(err.kwargs.get("error") or err)
        if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
            return PermanentError(f"{what}: TLS verification of {endpoint} failed: {reason}")
        return PermanentError(f"{what}: TLS handshake with {endpoint} failed: {reason}")
    if isinstance(err, (botocore.exceptions.ParamValidationError, botocore.exceptions.NoCredentialsError,
                        botocore.exceptions.NoRegionError, botocore.exceptions.InvalidRegionError)):
        return PermanentError(f"{what}: {err}")
    if isinstance(err, botocore.exceptions.FlexibleChecksumError):
        return TransientError(f"{what}: the object arrived corrupted: {err}")
    if isinstance(err, (botocore.exceptions.BotoCoreError, OSError)):
        # Connection refused/reset/closed, timeouts, a short body (IncompleteReadError): the link, not the data.
        return TransientError(f"{what}: {err}")
    return TransientError(f"{what}: {err}")


def _session() -> botocore.session.Session:
    """A botocore session that sees what a pod sees: its environment, never the node's AWS config files."""
    session = botocore.session.Session()
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    resolver = botocore.credentials.create_credential_resolver(session)
    for method in _FILE_PROVIDERS:
        resolver.remove(method)
    session.register_component("credential_provider", resolver)
    return session


def _verify(cert_dirs: list[str | None], insecure: bool, workdir: str) -> bool | str:
    """botocore's `verify`: False when insecure; else a CA file of the system pool plus the mounted certs (the
    certConfigMap, the proxy's CA), as upstream's createCertPool appends them to the system pool."""
    if insecure:
        return False
    extra = "".join(read_cert_dir(d) for d in cert_dirs)
    if not extra:
        return True
    path = os.path.join(workdir, "ca.pem")
    with open(path, "w") as f:
        f.write(system_bundle())
        f.write(extra)
    return path


class S3Stream:
    """The object's body; a broken connection or short body is a TransientError. `count`/`length`: object bytes."""

    def __init__(self, body: Any, length: int | None, source: S3Source) -> None:
        self._body = body
        self._source = source
        self.length = length
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(size if size >= 0 else READ_CHUNK)
        except Exception as err:
            raise self._source.classify(err) from err
        self.count += len(data)
        return data

    def close(self) -> None:
        self._body.close()


class S3Source:
    """One S3 object: a signed GET streams it, a presigned GET URL lets nbdkit read it by ranges."""

    def __init__(self, url: str, location: S3Location, *, access_key: str = "", secret_key: str = "",
                 cert_dirs: list[str | None] | None = None, insecure: bool = False) -> None:
        if bool(access_key) != bool(secret_key):
            # Upstream's rule (getS3Client): a half-filled secret is a mistake, not a request for anonymity.
            raise PermanentError("s3 access key and secret key must be set together or not at all")
        self.url = url
        self.location = location
        self._cert_dirs = list(cert_dirs or [])
        self._insecure = insecure
        self.signed = True
        if insecure:
            # The user asked for no verification (insecureSkipVerify); urllib3 would warn on every request.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        self._workdir = tempfile.mkdtemp(prefix="pycdi-s3-")
        weakref.finalize(self, shutil.rmtree, self._workdir, True)
        try:
            self._client: Any = self._make_client(access_key, secret_key)
        except Exception as err:
            raise PermanentError(f"could not build an s3 client for {url}: {err}") from err
        self._pending: dict[str, Any] | None = None

    def _make_client(self, access_key: str, secret_key: str) -> Any:
        session = _session()
        # No secretRef: the pod's ambient identity (env keys, IRSA web identity, container or instance role),
        # as upstream's SDK default chain; with none of those, anonymous requests (a public bucket).
        self.signed = bool(access_key) or session.get_credentials() is not None
        s3_options: Any = {"addressing_style": self.location.addressing}  # botocore-stubs want a Literal
        config = Config(
            signature_version="s3v4" if self.signed else UNSIGNED,
            s3=s3_options,
            retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=STALL_SECONDS,
        )
        # Any: botocore-stubs know the generic client only, not S3's generated methods.
        return session.create_client(
            "s3", region_name=self.location.region, endpoint_url=self.location.endpoint_url,
            verify=_verify(self._cert_dirs, self._insecure, self._workdir), config=config,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
        )  # fmt: skip

    @property
    def name(self) -> str:
        return self.url

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    def classify(self, err: BaseException) -> DataPathError:
        return classify(err, self.location, self.endpoint, self.signed)

    def _get(self) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._client.get_object(Bucket=self.location.bucket, Key=self.location.key)
        except Exception as err:
            raise self.classify(err) from err
        return response

    def probe(self) -> Probe:
        """The GET itself (kept for `open`): one request, and S3's error codes come in its body (a HEAD's don't)."""
        if self._pending is None:
            self._pending = self._get()
        response = self._pending
        length = response.get("ContentLength")
        # Ranged GETs are part of the S3 API; whether nbdkit can use them is checked in ranged().
        return Probe(int(length) if length is not None else None, True, str(response.get("ContentType") or ""),
                     self.url)

    def open(self) -> S3Stream:
        response, self._pending = self._pending or self._get(), None
        length = response.get("ContentLength")
        return S3Stream(response["Body"], int(length) if length is not None else None, self)

    def ranged(self) -> HttpConfig | None:
        """A presigned GET URL of the object, if nbdkit can read it.

        nbdkit's curl plugin (1.32) asks for the size with a HEAD request, and a URL presigned for GET signs the
        method: AWS refuses HEAD on it, and so may other servers. Checked here with one HEAD: a refusal means no
        nbdkit (the importer downloads, into scratch), not a failed import."""
        try:
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.location.bucket, "Key": self.location.key},
                ExpiresIn=PRESIGN_SECONDS,
            )  # fmt: skip
        except Exception as err:
            log.info("no presigned URL for %s (%s): downloading instead", self.url, err)
            return None
        config = HttpConfig(url=url, cert_dirs=self._cert_dirs, insecure=self._insecure)
        problem = _head_problem(config)
        if problem:
            log.info("the presigned URL of %s is not readable by nbdkit (%s): downloading instead", self.url, problem)
            return None
        return config


def _head_problem(config: HttpConfig) -> str | None:
    """Why nbdkit's HEAD on the URL would fail (refused, no size, no ranges), or None when it works."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler(),
        urllib.request.HTTPSHandler(context=ssl_context(config.cert_dirs, config.insecure)),
    )
    request = urllib.request.Request(config.url, method="HEAD", headers=dict(config.header_pairs()))
    try:
        with opener.open(request, timeout=CONNECT_TIMEOUT) as resp:
            if not (resp.headers.get("Content-Length") or "").isdigit():
                return "no Content-Length"
            if (resp.headers.get("Accept-Ranges") or "").lower() != "bytes":
                return "no Accept-Ranges: bytes"
    except urllib.error.HTTPError as err:
        return f"HEAD answered {err.code}"
    except (OSError, ValueError) as err:
        return f"HEAD failed: {err}"
    return None


def from_env(env: Mapping[str, str], cert_dirs: list[str | None], insecure: bool) -> S3Source:
    """The s3 source the importer's environment describes (IMPORTER_ENDPOINT, the secretRef's keys)."""
    url = env.get("IMPORTER_ENDPOINT", "")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    location = parse_url(url, default_region=region)
    return S3Source(url, location, access_key=env.get("IMPORTER_ACCESS_KEY_ID", ""),
                    secret_key=env.get("IMPORTER_SECRET_KEY", ""), cert_dirs=cert_dirs, insecure=insecure)
