"""The object store: SQLite in WAL mode, a kine-style append-only revision log plus a table of current objects.

One process owns the database and writes through a single connection, so the global revision (the
`resourceVersion` of every object) is simply the next integer and commit order is revision order. Each
write appends a row to `log` and updates `current` in the same transaction; watches are served from an
in-memory fan-out fed at commit time, and resumed from `log` when a client asks for an older revision.
Compaction drops log rows older than a target revision; reads and watches from before it get 410.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    prev_rev INTEGER NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_by_key ON log(key, rev);
CREATE TABLE IF NOT EXISTS current (
    key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    rev INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

#: A watcher whose client reads slower than this many queued events is dropped; it reconnects and resumes.
WATCH_QUEUE_LIMIT = 20_000


class StoreError(Exception):
    """Base of the store's outcomes that the service layer turns into API errors."""


class KeyExists(StoreError):
    pass


class KeyMissing(StoreError):
    pass


class RevisionMismatch(StoreError):
    """The object changed since the revision the writer expected (optimistic concurrency)."""


class Compacted(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest available {compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass(frozen=True)
class Event:
    """One committed change, as watchers see it."""

    type: str
    key: str
    namespace: str
    name: str
    rev: int
    object: Obj
    #: The object before this change (None for ADDED, or when compaction has dropped it).
    previous: Obj | None = None


@dataclass(eq=False)  # identity semantics: watchers live in a set
class Watcher:
    """A registered watch: events for one storage key, optionally one namespace, queued for a client."""

    key: str
    namespace: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= WATCH_QUEUE_LIMIT:
            # Too far behind: end the stream (None) so the client re-lists or resumes from its last RV.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


@dataclass(frozen=True)
class Page:
    items: list[tuple[str, str, str]]  # (namespace, name, raw JSON) in key order
    rev: int
    #: (namespace, name) of the last item when more items remain, else None.
    next_start: tuple[str, str] | None
    remaining: int


class Store:
    """The SQLite store. All methods run on the event loop thread; SQLite calls here are short."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash (the WAL is in the OS cache), which is what
        # "answered 2xx means stored" requires; only a power loss could drop the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        self._rev = self._load_rev()
        self._compacted = self._meta("compacted_rev")
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []

    # ---- revisions -------------------------------------------------------------------------------

    def _meta(self, k: str) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return int(row[0]) if row else 0

    def _load_rev(self) -> int:
        log_max = self._db.execute("SELECT COALESCE(MAX(rev), 0) FROM log").fetchone()[0]
        cur_max = self._db.execute("SELECT COALESCE(MAX(rev), 0) FROM current").fetchone()[0]
        return max(int(log_max), int(cur_max), self._meta("last_rev"), self._meta("compacted_rev"))

    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    # ---- reads -----------------------------------------------------------------------------------

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        row = self._db.execute(
            "SELECT value FROM current WHERE key = ? AND namespace = ? AND name = ?", (key, namespace, name)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def get_raw(self, key: str, namespace: str, name: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM current WHERE key = ? AND namespace = ? AND name = ?", (key, namespace, name)
        ).fetchone()
        return str(row[0]) if row else None

    def list_page(
        self,
        key: str,
        namespace: str | None,
        *,
        start_after: tuple[str, str] | None = None,
        limit: int = 0,
        name: str | None = None,
        at_rev: int | None = None,
    ) -> Page:
        """Objects of `key` in (namespace, name) order, after `start_after`, at most `limit`.

        With `at_rev` below the current revision the page is read from the log as it stood at that revision
        (kine's MVCC read), so the pages of one paginated list form one consistent snapshot.
        """
        if at_rev is not None and at_rev < self._compacted:
            raise Compacted(at_rev, self._compacted)
        where = ["key = ?"]
        args: list[Any] = [key]
        if namespace is not None:
            where.append("namespace = ?")
            args.append(namespace)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if start_after is not None:
            where.append("(namespace, name) > (?, ?)")
            args.extend(start_after)
        rev = self._rev
        if at_rev is not None and at_rev < self._rev:
            rev = at_rev
            # The newest version of each object at or below `rev` (SQLite returns the bare columns of the MAX row);
            # objects whose newest version is a tombstone did not exist then.
            source = ("(SELECT namespace, name, value, type, MAX(rev) AS r FROM log WHERE "
                      f"{' AND '.join(where)} AND rev <= ? GROUP BY namespace, name) WHERE type != 'DELETED'")
            args.append(at_rev)
        else:
            source = f"current WHERE {' AND '.join(where)}"
        sql = f"SELECT namespace, name, value FROM {source} ORDER BY namespace, name"
        if limit > 0:
            rows = self._db.execute(sql + " LIMIT ?", (*args, limit + 1)).fetchall()
        else:
            rows = self._db.execute(sql, args).fetchall()
        more = limit > 0 and len(rows) > limit
        items = [(r[0], r[1], r[2]) for r in rows[:limit]] if more else [(r[0], r[1], r[2]) for r in rows]
        if more:
            last = items[-1]
            total = int(self._db.execute(f"SELECT COUNT(*) FROM {source}", args).fetchone()[0])
            return Page(items, rev, (last[0], last[1]), total - len(items))
        return Page(items, rev, None, 0)

    def iter_objects(self, key: str, namespace: str | None = None) -> Iterator[Obj]:
        page = self.list_page(key, namespace)
        for _, _, raw in page.items:
            yield json.loads(raw)

    def count(self, key: str, namespace: str | None = None) -> int:
        if namespace is None:
            return int(self._db.execute("SELECT COUNT(*) FROM current WHERE key = ?", (key,)).fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM current WHERE key = ? AND namespace = ?",
                                    (key, namespace)).fetchone()[0])

    def keys_in_namespace(self, namespace: str) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT key FROM current WHERE namespace = ?", (namespace,)).fetchall()
        return [r[0] for r in rows]

    # ---- writes ----------------------------------------------------------------------------------

    def _stamp(self, obj: Obj, rev: int) -> str:
        obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
        # apiVersion and kind lead the stored text, so lists can splice it without parsing (see listing.py).
        head = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
        return json.dumps({**head, **obj}, separators=(",", ":"))

    def _commit(self, event_type: str, key: str, namespace: str, name: str, obj: Obj,
                prev_rev: int, previous: Obj | None, remove: bool = False) -> Obj:
        rev = self._rev + 1
        raw = self._stamp(obj, rev)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO log (rev, key, namespace, name, type, prev_rev, value) VALUES (?,?,?,?,?,?,?)",
                       (rev, key, namespace, name, event_type, prev_rev, raw))
            if remove:
                db.execute("DELETE FROM current WHERE key = ? AND namespace = ? AND name = ?",
                           (key, namespace, name))
                # A tombstone may later be compacted away; remember the revision it reached.
                db.execute("INSERT INTO meta (k, v) VALUES ('last_rev', ?) "
                           "ON CONFLICT(k) DO UPDATE SET v = excluded.v", (rev,))
            else:
                db.execute("INSERT INTO current (key, namespace, name, rev, value) VALUES (?,?,?,?,?) "
                           "ON CONFLICT(key, namespace, name) DO UPDATE SET rev = excluded.rev, "
                           "value = excluded.value", (key, namespace, name, rev, raw))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._rev = rev
        self._publish(Event(event_type, key, namespace, name, rev, obj, previous))
        return obj

    def _current(self, key: str, namespace: str, name: str) -> tuple[int, Obj] | None:
        row = self._db.execute(
            "SELECT rev, value FROM current WHERE key = ? AND namespace = ? AND name = ?", (key, namespace, name)
        ).fetchone()
        return (int(row[0]), json.loads(row[1])) if row else None

    def create(self, key: str, namespace: str, name: str, obj: Obj) -> Obj:
        if self._current(key, namespace, name) is not None:
            raise KeyExists(name)
        return self._commit(ADDED, key, namespace, name, obj, 0, None)

    def update(self, key: str, namespace: str, name: str, obj: Obj, expected_rev: int | None = None) -> Obj:
        cur = self._current(key, namespace, name)
        if cur is None:
            raise KeyMissing(name)
        if expected_rev is not None and cur[0] != expected_rev:
            raise RevisionMismatch(name)
        return self._commit(MODIFIED, key, namespace, name, obj, cur[0], cur[1])

    def delete(self, key: str, namespace: str, name: str, expected_rev: int | None = None,
               final: Obj | None = None) -> Obj:
        """Remove an object; `final` is the state its last write left (e.g. with the last finalizer gone)."""
        cur = self._current(key, namespace, name)
        if cur is None:
            raise KeyMissing(name)
        if expected_rev is not None and cur[0] != expected_rev:
            raise RevisionMismatch(name)
        # The DELETED event carries the final state of the object at the tombstone's revision.
        obj = final if final is not None else cur[1]
        return self._commit(DELETED, key, namespace, name, obj, cur[0], cur[1], remove=True)

    # ---- watch -----------------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        for watcher in tuple(self._watchers):
            if watcher.key == event.key and (watcher.namespace is None or watcher.namespace == event.namespace):
                watcher.offer(event)
        for listener in self._listeners:
            listener(event)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener` synchronously for every committed event (in-process control loops, caches)."""
        self._listeners.append(listener)

    def watch(self, key: str, namespace: str | None, since: int) -> Watcher:
        """Register a watcher that first receives every event after revision `since` still in the log.

        Replay and registration happen without yielding to the event loop, so no commit can fall between them.
        """
        if since < self._compacted:
            raise Compacted(since, self._compacted)
        watcher = Watcher(key, namespace)
        if since < self._rev:
            for event in self.events_after(key, namespace, since):
                watcher.offer(event)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def events_after(self, key: str, namespace: str | None, since: int) -> Iterator[Event]:
        sql = "SELECT rev, namespace, name, type, prev_rev, value FROM log WHERE key = ? AND rev > ?"
        args: list[Any] = [key, since]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        rows = self._db.execute(sql + " ORDER BY rev", args).fetchall()
        for rev, ns, name, etype, prev_rev, raw in rows:
            previous = None
            if prev_rev and etype != ADDED:
                prow = self._db.execute("SELECT value FROM log WHERE rev = ?", (prev_rev,)).fetchone()
                previous = json.loads(prow[0]) if prow else None
            yield Event(etype, key, ns, name, int(rev), json.loads(raw), previous)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    # ---- compaction ------------------------------------------------------------------------------

    def compact(self, target: int, keep: int = 1000) -> int:
        """Drop log history at or below `target` (never the last `keep` revisions); returns the new floor.

        As kine: a version goes once a newer version at or below `target` supersedes it, and tombstones at or below
        `target` go; so every revision from the floor on can still be read as it stood (paginated lists need it).
        """
        target = min(target, self._rev - keep)
        if target <= self._compacted:
            return self._compacted
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log WHERE rev <= ? AND prev_rev != 0)",
                       (target,))
            db.execute("DELETE FROM log WHERE type = 'DELETED' AND rev <= ?", (target,))
            db.execute("INSERT INTO meta (k, v) VALUES ('compacted_rev', ?) "
                       "ON CONFLICT(k) DO UPDATE SET v = excluded.v", (target,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._compacted = target
        return target

    def checkpoint(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def end_watches(self) -> None:
        for watcher in tuple(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()

    def close(self) -> None:
        self.end_watches()
        self._db.close()
