"""A small synchronous JSON client for the Kubernetes API, for the CLI (controllers use the async client)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from .config import ClientConfig
from .errors import APIStatusError


class RestClient:
    def __init__(self, config: ClientConfig, timeout: float = 30.0) -> None:
        self.config = config
        parsed = urllib.parse.urlsplit(config.server)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 443
        self._timeout = timeout

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> dict[str, Any]:
        conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                           context=self.config.ssl_context())
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.config.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            payload: dict[str, Any] = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            payload = {"message": raw.decode(errors="replace")}
        if response.status >= 400:
            raise APIStatusError(response.status, payload.get("reason", ""), payload.get("message", ""), payload)
        return payload

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body)
