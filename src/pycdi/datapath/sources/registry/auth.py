"""Registry authentication: `WWW-Authenticate` challenges (RFC 7235) and Docker token-service requests/answers."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field

from ...errors import PermanentError

_SEPARATORS = " \t,="


@dataclass(frozen=True)
class Credentials:
    """The secretRef's accessKeyId / secretKey: a user name and password (or token) for the registry."""

    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    """One challenge: the scheme in lowercase (`basic`, `bearer`) and its parameters (names in lowercase)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.more() else ""

    def skip(self, chars: str) -> None:
        while self.more() and self.text[self.pos] in chars:
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.more() and self.text[self.pos] not in _SEPARATORS:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A quoted-string, the opening quote under the cursor; backslash escapes the next character."""
        self.pos += 1
        out: list[str] = []
        while self.more():
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and self.more():
                out.append(self.text[self.pos])
                self.pos += 1
            elif ch == '"':
                break
            else:
                out.append(ch)
        return "".join(out)


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge of a (possibly combined) `WWW-Authenticate` value, in order.

    `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`
    gives one bearer challenge with three parameters; commas inside quotes belong to the value, and a bare word
    not followed by `=` starts the next challenge.
    """
    s = _Scanner(header)
    out: list[Challenge] = []
    while True:
        s.skip(" \t,")
        if not s.more():
            return out
        scheme = s.token()
        if not scheme:  # a stray "=": nothing sensible follows
            return out
        params: dict[str, str] = {}
        while True:
            s.skip(" \t")
            start = s.pos
            name = s.token()
            s.skip(" \t")
            if not name or s.peek() != "=":
                s.pos = start  # the next challenge's scheme (or the end)
                break
            s.pos += 1
            s.skip(" \t")
            value = s.quoted() if s.peek() == '"' else s.token()
            params[name.lower()] = value
            s.skip(" \t")
            if s.peek() == ",":
                s.pos += 1
        out.append(Challenge(scheme.lower(), params))


def token_url(challenge: Challenge, default_scope: str) -> str:
    """The token-service URL a bearer challenge names: realm, with service and each scope as query parameters."""
    realm = challenge.params.get("realm", "")
    if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
        raise PermanentError(f"the registry's bearer challenge names no usable token service (realm {realm!r})")
    query: list[tuple[str, str]] = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    scopes = challenge.params.get("scope", "").split() or [default_scope]
    query.extend(("scope", scope) for scope in scopes)
    return realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)


def token_from_answer(body: bytes, realm: str) -> str:
    """The token of a token service's JSON answer (`token`, or the OAuth2 `access_token`)."""
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise PermanentError(f"the token service {realm} answered with something that is not JSON: {err}") from err
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise PermanentError(f"the token service {realm} answered without a token")
    return token
