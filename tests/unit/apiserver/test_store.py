"""The SQLite store: revisions, optimistic concurrency, watch replay, MVCC reads and kine-style compaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycdi.cluster.apiserver.store import Compacted, KeyExists, RevisionMismatch, Store

KEY = "core/configmaps"


def cm(name: str, value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"},
            "data": {"v": value}}


def names(store: Store, at: int | None = None) -> list[tuple[str, str]]:
    page = store.list_page(KEY, "ns", at_rev=at)
    return [(name, raw.split('"v":"')[1].split('"')[0]) for _, name, raw in page.items]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_revisions_are_global_and_survive_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    a = s.create(KEY, "ns", "a", cm("a", "1"))
    b = s.create("core/secrets", "ns", "b", {"metadata": {"name": "b"}})
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    s.delete("core/secrets", "ns", "b")
    last = s.revision
    s.close()
    again = Store(tmp_path / "db")
    assert again.revision == last
    assert again.get(KEY, "ns", "a") is not None and again.get("core/secrets", "ns", "b") is None
    again.close()


def test_create_twice_and_stale_update(store: Store) -> None:
    obj = store.create(KEY, "ns", "a", cm("a", "1"))
    with pytest.raises(KeyExists):
        store.create(KEY, "ns", "a", cm("a", "2"))
    rev = int(obj["metadata"]["resourceVersion"])
    store.update(KEY, "ns", "a", cm("a", "2"), expected_rev=rev)
    with pytest.raises(RevisionMismatch):
        store.update(KEY, "ns", "a", cm("a", "3"), expected_rev=rev)


def test_list_at_an_older_revision_is_that_snapshot(store: Store) -> None:
    store.create(KEY, "ns", "a", cm("a", "1"))
    store.create(KEY, "ns", "b", cm("b", "1"))
    snapshot = store.revision
    store.update(KEY, "ns", "a", cm("a", "2"))
    store.delete(KEY, "ns", "b")
    store.create(KEY, "ns", "c", cm("c", "1"))
    assert names(store) == [("a", "2"), ("c", "1")]
    assert names(store, snapshot) == [("a", "1"), ("b", "1")]


def test_compaction_keeps_every_revision_from_the_floor_readable(store: Store) -> None:
    store.create(KEY, "ns", "a", cm("a", "1"))
    store.create(KEY, "ns", "b", cm("b", "1"))
    store.update(KEY, "ns", "a", cm("a", "2"))
    floor = store.revision
    store.delete(KEY, "ns", "b")
    store.update(KEY, "ns", "a", cm("a", "3"))
    before = {rev: names(store, rev) for rev in range(floor, store.revision + 1)}
    assert store.compact(floor, keep=0) == floor
    for rev, expected in before.items():
        assert names(store, rev) == expected, rev
    with pytest.raises(Compacted):
        store.list_page(KEY, "ns", at_rev=floor - 1)
    with pytest.raises(Compacted):
        store.watch(KEY, "ns", floor - 1)


def test_watch_replays_after_a_revision(store: Store) -> None:
    first = store.create(KEY, "ns", "a", cm("a", "1"))
    store.update(KEY, "ns", "a", cm("a", "2"))
    store.delete(KEY, "ns", "a")
    watcher = store.watch(KEY, "ns", int(first["metadata"]["resourceVersion"]))
    events = [watcher.queue.get_nowait() for _ in range(watcher.queue.qsize())]
    assert [(e.type, e.object["data"]["v"]) for e in events if e] == [("MODIFIED", "2"), ("DELETED", "2")]
    assert events[0] is not None and events[0].previous is not None
    assert events[0].previous["data"]["v"] == "1"
    store.unwatch(watcher)
