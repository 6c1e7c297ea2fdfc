"""Lists: selectors, pagination with continue tokens, and the list envelope."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from . import errors
from .conversion import to_served
from .resources import ResourceInfo
from .selectors import FieldSelector, LabelSelector
from .store import Store

Obj = dict[str, Any]

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None
    #: The items as stored JSON text, when the caller asked for raw items and none needed rewriting.
    raw_items: list[str] | None = None

    def metadata(self) -> Obj:
        meta: Obj = {"resourceVersion": str(self.resource_version)}
        if self.continue_token:
            meta["continue"] = self.continue_token
        if self.remaining is not None:
            meta["remainingItemCount"] = self.remaining
        return meta


def encode_continue(rev: int, start: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": f"{start[0]}/{start[1]}"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        namespace, _, name = str(data["start"]).partition("/")
        return int(data["rv"]), (namespace, name)
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise errors.bad_request(f"continue key is not valid: {token!r}") from None


def list_objects(store: Store, info: ResourceInfo, namespace: str | None, *,
                 labels: LabelSelector | None = None, fields: FieldSelector | None = None,
                 limit: int = 0, continue_token: str = "", raw: bool = False) -> ListResult:
    """One page of current objects matching the selectors, kube's pagination semantics.

    With `raw`, an unfiltered page whose stored objects already carry the served apiVersion and kind comes back
    as their stored JSON text (`raw_items`): large lists then cost no parsing and no re-encoding.
    """
    if raw and (labels is None or labels.empty) and (fields is None or fields.empty):
        spliced = _raw_page(store, info, namespace, limit, continue_token)
        if spliced is not None:
            return spliced
    start: tuple[str, str] | None = None
    at_rev: int | None = None
    if continue_token:
        at_rev, start = decode_continue(continue_token)
        if at_rev < store.compacted_revision:
            raise errors.expired(CONTINUE_EXPIRED)
    name = fields.value_for("metadata.name") if fields is not None else None
    if fields is not None and namespace is None:
        namespace = fields.value_for("metadata.namespace")
    key = info.storage_key
    items: list[Obj] = []
    # Every page of a paginated list is read at the revision of its first page: one consistent snapshot.
    rev = at_rev if at_rev is not None else store.revision
    while True:
        want = limit - len(items) if limit > 0 else 0
        page = store.list_page(key, namespace if info.namespaced else None, start_after=start, limit=want,
                               name=name, at_rev=rev)
        for _ns, _name, text in page.items:
            obj = json.loads(text)
            if labels is not None and not labels.empty and not labels.matches(
                    (obj.get("metadata") or {}).get("labels") or {}):
                continue
            if fields is not None and not fields.empty and not fields.matches(obj):
                continue
            obj = to_served(info, obj)
            items.append(obj)
        if page.next_start is None:
            return ListResult(items, rev)
        start = page.next_start
        if limit > 0 and len(items) >= limit:
            filtered = (labels is not None and not labels.empty) or (fields is not None and not fields.empty)
            return ListResult(items, rev, encode_continue(rev, start), None if filtered else page.remaining)


def _raw_page(store: Store, info: ResourceInfo, namespace: str | None, limit: int,
              continue_token: str) -> ListResult | None:
    start: tuple[str, str] | None = None
    at_rev: int | None = None
    if continue_token:
        at_rev, start = decode_continue(continue_token)
        if at_rev < store.compacted_revision:
            raise errors.expired(CONTINUE_EXPIRED)
    page = store.list_page(info.storage_key, namespace if info.namespaced else None, start_after=start,
                           limit=limit, at_rev=at_rev)
    head = json.dumps({"apiVersion": info.api_version, "kind": info.kind}, separators=(",", ":"))[:-1] + ","
    raws = [raw for _ns, _name, raw in page.items]
    if not all(r.startswith(head) for r in raws):
        return None  # written at another version (or before stored text led with apiVersion): parse instead
    token = encode_continue(page.rev, page.next_start) if page.next_start is not None else ""
    return ListResult([], page.rev, token, page.remaining if page.next_start is not None else None, raws)
