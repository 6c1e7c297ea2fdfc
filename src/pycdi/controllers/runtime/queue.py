"""A rate-limited work queue, as client-go's workqueue: a key is queued once, never processed twice at once."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RateLimitingQueue(Generic[K]):
    """Dedup (a key waiting is not added twice), exclusivity (a key being processed is re-queued only after
    `done`), delayed adds, and per-key exponential back-off (`base * 2**failures`, capped at `maximum`)."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        # key -> (due time, timer): only the earliest pending delayed add of a key is kept.
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        # Set whenever the queue may hold a key (or on shutdown); waiters re-check after waking.
        self._wakeup = asyncio.Event()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def pending(self) -> set[K]:
        """Every key queued, being processed or waiting for its delay."""
        return set(self._queue) | self._processing | set(self._waiting)

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def _notify(self) -> None:
        self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current[0] <= due:
                return
            current[1].cancel()
        self._waiting[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def when(self, key: K) -> float:
        """The back-off for the key's next failure, counting it."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return min(self.base_delay * float(2 ** failures), self.max_delay)

    def add_rate_limited(self, key: K) -> float:
        delay = self.when(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K | None:
        """The next key, marked as processing; None once the queue is shut down."""
        while not self._queue and not self._shutting_down:
            self._wakeup.clear()  # no await between the check and the clear: no add can slip in
            await self._wakeup.wait()
        if self._shutting_down:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        self._wakeup.set()
