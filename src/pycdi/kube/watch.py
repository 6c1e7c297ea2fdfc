"""List then watch, as client-go's reflector: resume from the list's resourceVersion, relist on 410, back off."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .client import KubeClient
from .errors import APIStatusError, Gone, NotFound
from .resources import Resource

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Exponential back-off with jitter, reset after a success (client-go's reflector: 800ms up to 30s)."""

    initial: float = 0.8
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1
    _next: float = field(default=0.0, init=False)

    def next(self) -> float:
        self._next = self.initial if self._next == 0 else min(self._next * self.factor, self.maximum)
        return self._next * (1 + random.uniform(0, self.jitter))

    def reset(self) -> None:
        self._next = 0.0


@dataclass(frozen=True)
class Relist:
    """The whole current state: every item, as of `resource_version`. Comes first, and again after a 410."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED or DELETED
    object: dict[str, Any]


async def list_watch(client: KubeClient, resource: Resource, namespace: str | None = None, *,
                     label_selector: str | None = None, timeout_seconds: int = 300,
                     backoff: Backoff | None = None) -> AsyncIterator[Relist | WatchEvent]:
    """Yield a `Relist`, then the events after it, forever: reconnects resume where the last event left off.

    A resource the server does not serve (its CRD is not installed) yields an empty `Relist` and is
    retried after the back-off, so that a controller depending on it still becomes ready.
    """
    backoff = backoff or Backoff()
    version = ""
    while True:
        if not version:
            try:
                listing = await client.list(resource, namespace, label_selector=label_selector)
            except NotFound:
                yield Relist([], "")
                await asyncio.sleep(backoff.next())
                continue
            except (APIStatusError, aiohttp.ClientError, OSError, TimeoutError) as e:
                delay = backoff.next()
                log.warning("listing %s failed (%s); retrying in %.1fs", resource.plural, e, delay)
                await asyncio.sleep(delay)
                continue
            version = listing["metadata"].get("resourceVersion", "")
            yield Relist(listing["items"], version)
        try:
            async for event in client.watch(resource, namespace, resource_version=version,
                                            timeout_seconds=timeout_seconds, label_selector=label_selector):
                kind, obj = event.get("type", ""), event.get("object") or {}
                if kind == "ERROR":
                    # A Status in the stream: 410 means our version was compacted; anything else, start over too.
                    log.info("watch of %s ended with %s: %s; relisting", resource.plural, obj.get("code"),
                             obj.get("message"))
                    version = ""
                    break
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                backoff.reset()
                if kind == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", resource.api_version)
                obj.setdefault("kind", resource.kind)
                yield WatchEvent(kind, obj)
        except Gone:
            version = ""
        except NotFound:
            version = ""  # the resource went away (CRD deleted): relist, which waits for it to return
        except (APIStatusError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            delay = backoff.next()
            log.info("watch of %s failed (%s); reconnecting in %.1fs", resource.plural, e, delay)
            await asyncio.sleep(delay)
