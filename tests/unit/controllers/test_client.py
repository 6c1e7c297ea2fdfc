"""The async client against a real embedded API server: verbs, error classes, watch, events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pycdi.cluster.apiserver.rest.app import APIServer
from pycdi.kube import errors
from pycdi.kube.client import KubeClient
from pycdi.kube.events import EventRecorder
from pycdi.kube.resources import CONFIG_MAPS, EVENTS, NAMESPACES
from pycdi.kube.watch import Relist, WatchEvent, list_watch


def cm(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"k": "v"}}


async def namespace(client: KubeClient) -> str:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_crud_and_patches(client: KubeClient) -> None:
    ns = await namespace(client)
    created = await client.create(CONFIG_MAPS, cm("a"), ns)
    assert (await client.get(CONFIG_MAPS, "a", ns))["data"] == {"k": "v"}
    created["data"] = {"k": "w"}
    updated = await client.update(CONFIG_MAPS, created, ns)
    assert updated["data"] == {"k": "w"}
    merged = await client.patch(CONFIG_MAPS, "a", {"data": {"m": "1"}}, ns)
    assert merged["data"] == {"k": "w", "m": "1"}
    jsoned = await client.patch(CONFIG_MAPS, "a", [{"op": "remove", "path": "/data/k"}], ns, patch_type="json")
    assert jsoned["data"] == {"m": "1"}
    applied = await client.patch(CONFIG_MAPS, "a", cm("a", {"m": "2"}), ns, patch_type="apply", force=True)
    assert applied["data"]["m"] == "2"
    listing = await client.list(CONFIG_MAPS, ns)
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a"]
    assert listing["items"][0]["kind"] == "ConfigMap" and listing["metadata"]["resourceVersion"]
    await client.delete(CONFIG_MAPS, "a", ns)
    with pytest.raises(errors.NotFound):
        await client.get(CONFIG_MAPS, "a", ns)


async def test_list_follows_continue_pages(client: KubeClient) -> None:
    ns = await namespace(client)
    for i in range(5):
        await client.create(CONFIG_MAPS, cm(f"c{i}"), ns)
    listing = await client.list(CONFIG_MAPS, ns, page_size=2)
    assert sorted(i["metadata"]["name"] for i in listing["items"]) == [f"c{i}" for i in range(5)]


async def test_errors_are_mapped_to_their_classes(client: KubeClient) -> None:
    ns = await namespace(client)
    first = await client.create(CONFIG_MAPS, cm("dup"), ns)
    with pytest.raises(errors.AlreadyExists) as exists:
        await client.create(CONFIG_MAPS, cm("dup"), ns)
    assert exists.value.code == 409 and exists.value.conflict
    await client.patch(CONFIG_MAPS, "dup", {"data": {"x": "y"}}, ns)
    with pytest.raises(errors.Conflict) as stale:
        await client.update(CONFIG_MAPS, first, ns)  # its resourceVersion is no longer current
    assert not isinstance(stale.value, errors.AlreadyExists)
    with pytest.raises(errors.Invalid) as invalid:
        await client.create(CONFIG_MAPS, cm("Not_A_Name"), ns)
    assert invalid.value.code == 422 and invalid.value.causes
    with pytest.raises(errors.NotFound) as missing:
        await client.get(CONFIG_MAPS, "nope", ns)
    assert missing.value.not_found and isinstance(missing.value, errors.APIStatusError)
    # The CLI builds APIStatusError itself: its constructor is unchanged.
    assert errors.APIStatusError(500, "InternalError", "boom").message == "boom"


async def test_watch_from_a_compacted_version_is_gone(client: KubeClient, api: APIServer) -> None:
    ns = await namespace(client)
    old = (await client.create(CONFIG_MAPS, cm("w"), ns))["metadata"]["resourceVersion"]
    for i in range(3):
        await client.patch(CONFIG_MAPS, "w", {"data": {"i": str(i)}}, ns)
    api.store.compact(api.store.revision, keep=0)
    events: list[dict[str, Any]] = []
    try:
        async for event in client.watch(CONFIG_MAPS, ns, resource_version=old, timeout_seconds=1):
            events.append(event)
            break
    except errors.Gone:
        return
    assert events and events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


async def test_list_watch_lists_then_streams_changes(client: KubeClient) -> None:
    ns = await namespace(client)
    await client.create(CONFIG_MAPS, cm("before"), ns)
    stream = list_watch(client, CONFIG_MAPS, ns)
    first = await anext(stream)
    assert isinstance(first, Relist) and [i["metadata"]["name"] for i in first.items] == ["before"]
    await client.create(CONFIG_MAPS, cm("after"), ns)
    event = await anext(stream)
    assert isinstance(event, WatchEvent) and event.type == "ADDED" and event.object["metadata"]["name"] == "after"
    await client.delete(CONFIG_MAPS, "before", ns)
    event = await anext(stream)
    assert isinstance(event, WatchEvent) and (event.type, event.object["metadata"]["name"]) == ("DELETED", "before")
    await stream.aclose()


async def test_event_recorder_aggregates_repeats(client: KubeClient) -> None:
    ns = await namespace(client)
    obj = await client.create(CONFIG_MAPS, cm("subject"), ns)
    recorder = EventRecorder(client, "test-controller")
    first = await recorder.warning(obj, "Broken", "it broke")
    second = await recorder.warning(obj, "Broken", "it broke")
    other = await recorder.normal(obj, "Fixed", "it works")
    assert first and second and other
    assert second["metadata"]["name"] == first["metadata"]["name"]
    assert second["count"] == 2
    stored = (await client.list(EVENTS, ns))["items"]
    by_reason = {e["reason"]: e for e in stored}
    assert by_reason["Broken"]["count"] == 2 and by_reason["Broken"]["type"] == "Warning"
    assert by_reason["Broken"]["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert by_reason["Broken"]["source"] == {"component": "test-controller"}
    assert by_reason["Fixed"]["count"] == 1
