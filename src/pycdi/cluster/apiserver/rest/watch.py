"""Watch streams: chunked JSON events with Kubernetes resourceVersion rules, bookmarks and selectors."""

from __future__ import annotations

import asyncio
import json
import random
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import errors
from ..conversion import to_served
from ..listing import list_objects
from ..selectors import FieldSelector, LabelSelector
from ..store import ADDED, DELETED, Compacted, Event
from ..tables import parse_include_object, render_table, wants_table
from .paths import Target

if TYPE_CHECKING:
    from .app import APIServer

Obj = dict[str, Any]

#: kopf gives up on a silent watch after 70 s; kube-apiserver bookmarks about once a minute.
BOOKMARK_INTERVAL = 30.0


def _matches(obj: Obj | None, labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
    if obj is None:
        return False
    if labels is not None and not labels.empty and not labels.matches(
            (obj.get("metadata") or {}).get("labels") or {}):
        return False
    return not (fields is not None and not fields.empty and not fields.matches(obj))


def translate(event: Event, labels: LabelSelector | None, fields: FieldSelector | None) -> str | None:
    """The event type a client with these selectors sees, or None when the change is invisible to it.

    An object that starts matching appears as ADDED and one that stops matching as DELETED, as kube does.
    """
    if labels is None and fields is None:
        return event.type
    now = _matches(event.object, labels, fields)
    if event.type == DELETED:
        return DELETED if now else None
    before = event.type != ADDED and _matches(event.previous, labels, fields)
    if now and before:
        return event.type
    if now:
        return ADDED
    if before:
        return DELETED
    return None


async def serve_watch(server: APIServer, request: web.Request, target: Target,
                      labels: LabelSelector | None, fields: FieldSelector | None) -> web.StreamResponse:
    q = request.query
    info = target.info
    store = server.store
    namespace = target.namespace or None
    if fields is not None and namespace is None:
        namespace = fields.value_for("metadata.namespace")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    send_initial = q.get("sendInitialEvents") in ("true", "1")
    rv_param = q.get("resourceVersion", "")
    try:
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else random.uniform(1800, 3600)
    except ValueError:
        raise errors.bad_request(f'invalid timeoutSeconds "{q.get("timeoutSeconds")}"') from None
    table = wants_table(request.headers.get("Accept", ""))
    include = parse_include_object(q.get("includeObject"))

    initial: list[Obj] = []
    error_event: Obj | None = None
    watcher = None
    # Listing and registering run without an await between them: no commit can slip through the gap.
    if rv_param in ("", "0") or send_initial:
        initial = list_objects(store, info, namespace if info.namespaced else None,
                               labels=labels, fields=fields).items
        watcher = store.watch(info.storage_key, namespace if info.namespaced else None, store.revision)
    else:
        try:
            since = int(rv_param)
        except ValueError:
            raise errors.bad_request(f'invalid resourceVersion "{rv_param}"') from None
        try:
            watcher = store.watch(info.storage_key, namespace if info.namespaced else None, since)
        except Compacted as e:
            error_event = errors.expired(f"too old resource version: {e.requested} ({store.revision})").status()
    start_rev = store.revision

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def send(event_type: str, obj: Obj) -> None:
        if table and event_type in ("ADDED", "MODIFIED", "DELETED"):
            obj = render_table(info, [obj], include_object=include, table_version=table)
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
        await response.write(line.encode())

    def bookmark(rev: int, initial_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(rev)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}

    if error_event is not None or watcher is None:
        await send("ERROR", error_event or errors.internal("watch failed").status())
        await response.write_eof()
        return response

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        for obj in initial:
            await send("ADDED", obj)
        if send_initial and bookmarks:
            await send("BOOKMARK", bookmark(start_rev, initial_end=True))
        next_bookmark = loop.time() + BOOKMARK_INTERVAL
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark) - now
            try:
                event = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.001))
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    await send("BOOKMARK", bookmark(store.revision))
                    next_bookmark = loop.time() + BOOKMARK_INTERVAL
                continue
            if event is None:
                break  # the store is closing or this watcher fell too far behind
            seen = translate(event, labels, fields)
            if seen is None:
                continue
            obj = to_served(info, dict(event.object))
            await send(seen, obj)
        if bookmarks:
            await send("BOOKMARK", bookmark(store.revision))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.unwatch(watcher)
    return response
