"""A Docker registry HTTP API v2 client on urllib: HTTPS (plain HTTP only for insecure registries), basic and
bearer-token auth, manifests and blobs, errors classified permanent or transient."""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import urllib.error
import urllib.request
from email.message import Message

from ...errors import DataPathError, PermanentError, TransientError
from ...tls import ssl_context
from ..http import STALL_SECONDS, USER_AGENT, classify
from . import manifest as mf
from .auth import Challenge, Credentials, parse_challenges, token_from_answer, token_url
from .reference import Reference

log = logging.getLogger(__name__)
_ERROR_BODY = 64 << 10
_TOKEN_BODY = 1 << 20


def _api_errors(body: bytes) -> str:
    """`CODE (message)` of the registry's error document (`{"errors": [{"code", "message"}]}`), if it is one."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = [f"{e.get('code', '')} ({e.get('message', '')})".strip() for e in errors if isinstance(e, dict)]
    return "; ".join(p for p in parts if p)


def _status_text(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read(_ERROR_BODY)
    except (OSError, http.client.HTTPException):
        body = b""
    finally:
        err.close()
    detail = _api_errors(body)
    return f"{err.code} {err.reason}" + (f": {detail}" if detail else "")


class RegistryClient:
    """One registry and repository, reached with the DataVolume's credentials and trust."""

    def __init__(self, ref: Reference, cert_dirs: list[str | None], insecure: bool,
                 credentials: Credentials | None, timeout: float = STALL_SECONDS) -> None:
        self.ref = ref
        self.insecure = insecure
        self.credentials = credentials
        self.timeout = timeout
        self.scheme: str | None = None
        self._authorization: str | None = None
        # ProxyHandler() reads http_proxy/https_proxy/no_proxy (the CDIConfig import proxy), as upstream's client.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=ssl_context(cert_dirs, insecure))
        )

    @property
    def _default_scope(self) -> str:
        return f"repository:{self.ref.repository}:pull"

    def _request(self, url: str, accept: str | None = None, authorization: str | None = None,
                 ) -> http.client.HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if accept:
            req.add_header("Accept", accept)
        if authorization:
            # Unredirected: blob downloads may be redirected to storage (S3...) that must not see our credentials.
            req.add_unredirected_header("Authorization", authorization)
        resp = self._opener.open(req, timeout=self.timeout)
        assert isinstance(resp, http.client.HTTPResponse)
        return resp

    # --- connection and authentication

    def connect(self) -> None:
        """Find the scheme the registry speaks (`GET /v2/`) and authenticate as its challenge asks, once."""
        if self.scheme is not None:
            return
        host = self.ref.api_host
        # containers/image's rule: HTTPS; an insecure registry may also skip verification or speak plain HTTP.
        schemes = ("https", "http") if self.insecure else ("https",)
        first: BaseException | None = None
        for scheme in schemes:
            url = f"{scheme}://{host}/v2/"
            try:
                with self._request(url):
                    pass
                status, headers = 200, None
            except urllib.error.HTTPError as err:
                status, headers = err.code, err.headers
                err.close()
            except Exception as err:  # every failure is classified below; the first one is reported
                first = first or err
                continue
            if status >= 500:
                raise TransientError(f"registry {host} answered {status} to {url}")
            self.scheme = scheme
            log.info("registry %s speaks %s", host, scheme)
            if status == 401 and headers is not None:
                self._authorize(headers, None)
            return
        assert first is not None
        error = classify(first, f"https://{host}/v2/")
        reason = first.reason if isinstance(first, urllib.error.URLError) else first
        if isinstance(reason, ssl.SSLError) and not self.insecure:
            raise PermanentError(
                f"{error}; give the registry's CA with certConfigMap, or list {self.ref.host} in the CDIConfig's "
                "spec.insecureRegistries if it serves plain HTTP or a certificate that cannot be verified"
            ) from None
        raise error from None

    def _authorize(self, headers: Message, sent: str | None) -> bool:
        """Set the Authorization a 401's challenge asks for; False when there is nothing new to try.

        `sent`: the Authorization the refused request carried. A bearer challenge always gets a fresh token (the
        old one may have expired, or lacked the scope the challenge names); the caller retries only once."""
        challenges = parse_challenges(", ".join(headers.get_all("WWW-Authenticate") or []))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._authorization = "Bearer " + self._token(bearer)
            return True
        if self.credentials is None:
            return False
        basic = self.credentials.basic()
        if basic == sent:
            return False
        self._authorization = basic
        return True

    def _token(self, challenge: Challenge) -> str:
        """A bearer token from the challenge's realm; the basic credentials (if any) go to the token service."""
        url = token_url(challenge, self._default_scope)
        realm = challenge.params["realm"]
        try:
            with self._request(url, authorization=self.credentials.basic() if self.credentials else None) as resp:
                body = resp.read(_TOKEN_BODY)
        except urllib.error.HTTPError as err:
            text = _status_text(err)
            if err.code in (401, 403):
                raise PermanentError(
                    f"the token service {realm} refused {'the credentials' if self.credentials else 'anonymous access'}"
                    f" for {self.ref}: {text}" + ("" if self.credentials else "; give credentials with secretRef")
                ) from None
            raise (TransientError if err.code >= 500 or err.code == 429 else PermanentError)(
                f"the token service {realm} answered {text}") from None
        except Exception as err:
            raise classify(err, realm) from err
        return token_from_answer(body, realm)

    # --- requests

    def get(self, path: str, what: str, accept: str | None = None) -> http.client.HTTPResponse:
        """GET `/v2/<repository>/<path>` with our auth, answering one 401 with a new authorization."""
        self.connect()
        url = f"{self.scheme}://{self.ref.api_host}/v2/{self.ref.repository}/{path}"
        for attempt in range(2):
            sent = self._authorization
            try:
                return self._request(url, accept, sent)
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0 and self._authorize(err.headers, sent):
                    err.close()
                    continue
                raise self._status_error(err, what) from None
            except Exception as err:
                raise classify(err, url) from err
        raise AssertionError("unreachable")

    def _status_error(self, err: urllib.error.HTTPError, what: str) -> DataPathError:
        code = err.code
        text = _status_text(err)
        host = self.ref.host
        if code == 401:
            hint = ("check the credentials in the DataVolume's secretRef" if self.credentials
                    else "the registry wants credentials: give them with the DataVolume's secretRef")
            return PermanentError(f"{what}: authentication refused by {host} ({text}); {hint}")
        if code == 403:
            return PermanentError(f"{what}: access denied by {host} ({text})")
        if code == 404:
            return PermanentError(f"{what} not found ({text})")
        if code in (408, 429) or code >= 500:
            return TransientError(f"{what}: {host} answered {text}")
        return PermanentError(f"{what}: {host} answered {text}")

    def manifest(self, reference: str, name: str) -> mf.Manifest:
        """The manifest (or index) `reference` (a tag or a digest) names, its digest checked."""
        by_digest = ":" in reference
        what = f"image {name}" if not by_digest or reference == self.ref.digest else f"manifest {reference} of {name}"
        with self.get(f"manifests/{reference}", what, accept=mf.ACCEPT) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > mf.MAX_MANIFEST:
                raise PermanentError(f"the manifest of {name} is {length} bytes, more than the "
                                     f"{mf.MAX_MANIFEST} accepted")
            try:
                body = resp.read(mf.MAX_MANIFEST + 1)
            except (OSError, http.client.HTTPException) as err:
                raise classify(err, resp.geturl()) from err
            if len(body) > mf.MAX_MANIFEST:
                raise PermanentError(f"the manifest of {name} is larger than the {mf.MAX_MANIFEST} bytes accepted")
            header_digest = resp.headers.get("Docker-Content-Digest", "")
            content_type = resp.headers.get("Content-Type", "")
        expected = reference if by_digest else (header_digest if header_digest.startswith("sha256:") else None)
        return mf.parse(body, content_type, name, expected)

    def blob(self, digest: str, what: str) -> http.client.HTTPResponse:
        """An open response streaming the blob (redirects to storage followed)."""
        return self.get(f"blobs/{digest}", what)

