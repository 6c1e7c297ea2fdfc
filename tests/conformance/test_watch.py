"""Watch semantics: initial events, resume from a resourceVersion, selectors, bookmarks, timeouts, 410."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster

Obj = dict[str, Any]

#: Created in every namespace by the root-CA publisher loop at its own pace: noise for these tests.
IGNORED = {"kube-root-ca.crt"}


class WatchStream:
    """One streaming watch request read line by line; the socket timeout bounds every read."""

    def __init__(self, cluster: Cluster, path: str, read_timeout: float = 30.0) -> None:
        url = urllib.parse.urlsplit(cluster.server)
        self.conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port,
                                                context=cluster.ssl_context(), timeout=read_timeout)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {cluster.token}"})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.ended = False

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def next(self) -> Obj | None:
        """The next event, or None once the server has closed the stream."""
        while True:
            line = self.response.readline()
            if not line:
                self.ended = True
                return None
            if line.strip():
                event: Obj = json.loads(line)
                if name_of(event) in IGNORED:
                    continue
                return event

    def __iter__(self) -> Iterator[Obj]:
        while (event := self.next()) is not None:
            yield event

    def until(self, predicate: Callable[[Obj], bool]) -> list[Obj]:
        """Events up to and including the first one the predicate accepts (fails if the stream ends first)."""
        seen: list[Obj] = []
        for event in self:
            seen.append(event)
            if predicate(event):
                return seen
        raise AssertionError(f"watch ended without the expected event; saw {summary(seen)}")


def summary(events: list[Obj]) -> list[tuple[str, str]]:
    return [(e["type"], str(e["object"].get("metadata", {}).get("name", e["object"].get("code"))))
            for e in events]


def name_of(event: Obj) -> str:
    return str(event["object"].get("metadata", {}).get("name", ""))


def watch(cluster: Cluster, path: str, *, read_timeout: float = 30.0, **params: str) -> WatchStream:
    query = urllib.parse.urlencode({"watch": "true", **params})
    return WatchStream(cluster, f"{path}?{query}", read_timeout)


def new_namespace(cluster: Cluster, prefix: str = "w") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    status, body, _ = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    return name


def make_cm(cluster: Cluster, ns: str, name: str, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                      {"metadata": meta, "data": {"k": "v"}})
    assert status == 201, body
    result: Obj = body
    return result


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


# ---- initial events and resume ---------------------------------------------------------------------


@pytest.mark.parametrize("rv", [None, "0"])
def test_watch_without_rv_sends_synthetic_added_for_existing(cluster: Cluster, rv: str | None) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "a")
    make_cm(cluster, ns, "b")
    params = {"watch": "true", "timeoutSeconds": "5"}
    if rv is not None:
        params["resourceVersion"] = rv
    with WatchStream(cluster, f"{cms(ns)}?{urllib.parse.urlencode(params)}") as w:
        assert w.status == 200
        first = [w.next(), w.next()]
        assert [e and e["type"] for e in first] == ["ADDED", "ADDED"]
        assert sorted(name_of(e) for e in first if e) == ["a", "b"]
        for e in first:
            assert e is not None
            assert e["object"]["kind"] == "ConfigMap" and e["object"]["apiVersion"] == "v1"
        # Later changes follow the synthetic events on the same stream.
        make_cm(cluster, ns, "c")
        event = w.next()
        assert event is not None and event["type"] == "ADDED" and name_of(event) == "c"


def test_watch_from_rv_sends_only_later_events(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "old")
    _, listing, _ = cluster.request("GET", cms(ns))
    list_rv = listing["metadata"]["resourceVersion"]
    created = make_cm(cluster, ns, "new")
    with watch(cluster, cms(ns), resourceVersion=list_rv, timeoutSeconds="5") as w:
        event = w.next()
        assert event is not None
        assert (event["type"], name_of(event)) == ("ADDED", "new")
        assert event["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        status, _, _ = cluster.request("PATCH", f"{cms(ns)}/old", {"data": {"k": "2"}},
                                       content_type="application/merge-patch+json")
        assert status == 200
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("MODIFIED", "old")
        assert event["object"]["data"] == {"k": "2"}


def test_deleted_event_carries_final_object_with_new_rv(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    created = make_cm(cluster, ns, "gone", labels={"keep": "me"})
    rv = created["metadata"]["resourceVersion"]
    with watch(cluster, cms(ns), resourceVersion=rv, timeoutSeconds="5") as w:
        status, _, _ = cluster.request("DELETE", f"{cms(ns)}/gone")
        assert status == 200
        event = w.next()
        assert event is not None and event["type"] == "DELETED"
        obj = event["object"]
        assert obj["metadata"]["name"] == "gone" and obj["metadata"]["uid"] == created["metadata"]["uid"]
        assert obj["metadata"]["labels"] == {"keep": "me"} and obj["data"] == {"k": "v"}
        assert int(obj["metadata"]["resourceVersion"]) > int(rv)


def test_label_selector_watch_reports_objects_leaving_and_entering(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "m", labels={"tier": "web"})
    make_cm(cluster, ns, "other", labels={"tier": "db"})
    with watch(cluster, cms(ns), labelSelector="tier=web", timeoutSeconds="10") as w:
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("ADDED", "m")
        # "m" stops matching: the watcher sees it go away although it still exists.
        cluster.request("PATCH", f"{cms(ns)}/m", {"metadata": {"labels": {"tier": "db"}}},
                        content_type="application/merge-patch+json")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("DELETED", "m")
        assert event["object"]["metadata"]["labels"] == {"tier": "db"}
        # "other" starts matching: it appears as ADDED, not MODIFIED.
        cluster.request("PATCH", f"{cms(ns)}/other", {"metadata": {"labels": {"tier": "web"}}},
                        content_type="application/merge-patch+json")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("ADDED", "other")
        # A change to a matching object is an ordinary MODIFIED.
        cluster.request("PATCH", f"{cms(ns)}/other", {"data": {"k": "x"}},
                        content_type="application/merge-patch+json")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("MODIFIED", "other")


def test_field_selector_watch_on_name(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "one")
    make_cm(cluster, ns, "two")
    with watch(cluster, cms(ns), fieldSelector="metadata.name=two", resourceVersion="0",
               timeoutSeconds="5") as w:
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("ADDED", "two")
        cluster.request("PATCH", f"{cms(ns)}/one", {"data": {"k": "1"}},
                        content_type="application/merge-patch+json")
        cluster.request("PATCH", f"{cms(ns)}/two", {"data": {"k": "2"}},
                        content_type="application/merge-patch+json")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("MODIFIED", "two")


def test_namespaced_watch_does_not_see_other_namespaces(cluster: Cluster) -> None:
    ns1, ns2 = new_namespace(cluster), new_namespace(cluster)
    _, listing, _ = cluster.request("GET", cms(ns1))
    with watch(cluster, cms(ns1), resourceVersion=listing["metadata"]["resourceVersion"],
               timeoutSeconds="5") as w:
        make_cm(cluster, ns2, "elsewhere")
        make_cm(cluster, ns1, "here")
        event = w.next()
        assert event is not None and name_of(event) == "here"
        assert event["object"]["metadata"]["namespace"] == ns1


def test_all_namespaces_watch_sees_every_namespace(cluster: Cluster) -> None:
    ns1, ns2 = new_namespace(cluster), new_namespace(cluster)
    _, listing, _ = cluster.request("GET", "/api/v1/configmaps")
    with watch(cluster, "/api/v1/configmaps", resourceVersion=listing["metadata"]["resourceVersion"],
               timeoutSeconds="10") as w:
        make_cm(cluster, ns1, "x1")
        make_cm(cluster, ns2, "x2")
        seen = w.until(lambda e: name_of(e) == "x2" and e["object"]["metadata"]["namespace"] == ns2)
        assert ("ADDED", "x1") in summary(seen)


# ---- stream end, bookmarks, WatchList ------------------------------------------------------------------


def test_timeout_seconds_closes_the_stream(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "a")
    with watch(cluster, cms(ns), timeoutSeconds="1", read_timeout=20) as w:
        events = list(w)
    # The stream ended by itself (a read timeout would have raised instead).
    assert summary(events) == [("ADDED", "a")]


def test_bookmarks_periodic_and_before_timeout(cluster: Cluster) -> None:
    """The one slow test: the server bookmarks every 30 s, and once more when the stream ends."""
    ns = new_namespace(cluster)
    created = make_cm(cluster, ns, "a")
    rv = created["metadata"]["resourceVersion"]
    with watch(cluster, cms(ns), resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="32",
               read_timeout=60) as w:
        events = list(w)
    assert events, "expected at least the final bookmark"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    # One periodic bookmark (at ~30 s) plus the one before the stream closes.
    assert len(events) >= 2
    for event in events:
        obj = event["object"]
        assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
        assert int(obj["metadata"]["resourceVersion"]) >= int(rv)
        assert set(obj["metadata"]) <= {"resourceVersion", "annotations"}


def test_no_bookmarks_unless_asked(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    created = make_cm(cluster, ns, "a")
    with watch(cluster, cms(ns), resourceVersion=created["metadata"]["resourceVersion"],
               timeoutSeconds="1") as w:
        assert list(w) == []
        assert w.ended


def test_send_initial_events_ends_with_annotated_bookmark(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    make_cm(cluster, ns, "a")
    make_cm(cluster, ns, "b")
    _, listing, _ = cluster.request("GET", cms(ns))
    with watch(cluster, cms(ns), sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
               allowWatchBookmarks="true", timeoutSeconds="5") as w:
        events = w.until(lambda e: e["type"] == "BOOKMARK")
        assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
        assert sorted(name_of(e) for e in events[:2]) == ["a", "b"]
        mark = events[-1]["object"]
        assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(mark["metadata"]["resourceVersion"]) >= int(listing["metadata"]["resourceVersion"])
        make_cm(cluster, ns, "c")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("ADDED", "c")


def test_bad_watch_parameters_are_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster)
    for params in ({"resourceVersion": "abc"}, {"timeoutSeconds": "soon"}):
        status, body, _ = cluster.request("GET", f"{cms(ns)}?watch=true&{urllib.parse.urlencode(params)}")
        assert status == 400, body
        assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400


# ---- compaction: its own cluster with aggressive settings ------------------------------------------------


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("compact")),
                extra_env={"PYCDI_COMPACT_INTERVAL": "0.5", "PYCDI_COMPACT_KEEP": "10"})
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_compaction_expires_old_watches_and_continue_tokens(compacting: Cluster) -> None:
    c = compacting
    ns = new_namespace(c, "compact")
    for i in range(3):
        make_cm(c, ns, f"page-{i}")
    status, first_page, _ = c.request("GET", f"{cms(ns)}?limit=1")
    assert status == 200
    token = first_page["metadata"]["continue"]
    assert token
    early_rv = first_page["metadata"]["resourceVersion"]
    for i in range(40):
        make_cm(c, ns, f"filler-{i}")

    # Compaction runs on a timer: poll, bounded, until the early revision is gone.
    deadline = time.monotonic() + 30
    error: Obj | None = None
    while time.monotonic() < deadline:
        with watch(c, cms(ns), resourceVersion=early_rv, timeoutSeconds="1") as w:
            first = w.next()
        if first is not None and first["type"] == "ERROR":
            error = first
            break
        time.sleep(0.2)  # nothing to wait on: compaction is periodic and invisible to clients
    assert error is not None, "the early resourceVersion was never compacted"
    status_obj = error["object"]
    assert status_obj["kind"] == "Status" and status_obj["status"] == "Failure"
    assert status_obj["code"] == 410 and status_obj["reason"] == "Expired"
    assert status_obj["message"].startswith(f"too old resource version: {early_rv} (")

    status, body, _ = c.request("GET", f"{cms(ns)}?limit=1&continue={urllib.parse.quote(token)}")
    assert status == 410, body
    assert body["kind"] == "Status" and body["reason"] == "Expired" and body["code"] == 410

    # A watch from the current revision still works after compaction.
    _, listing, _ = c.request("GET", cms(ns))
    with watch(c, cms(ns), resourceVersion=listing["metadata"]["resourceVersion"], timeoutSeconds="5") as w:
        make_cm(c, ns, "after")
        event = w.next()
        assert event is not None and (event["type"], name_of(event)) == ("ADDED", "after")
