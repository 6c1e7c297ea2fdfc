"""Threads that let the data path's reading and writing overlap: a ring of reused buffers between a producer
and a consumer, and the writeback of what is behind the write head started early."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Final

#: A durable copy starts the writeback of each this-many bytes behind the write head, so the closing fsync
#: finds little left to write and the page cache recycles the same pages (fresh ones cost more than the copy).
WRITEBACK_STEP: Final = 32 << 20

#: What the producer hands over: (offset in the stream, buffer, bytes used).
Filled = tuple[int, bytearray, int]


class BufferRing:
    """`produce(ring)` runs on its own thread: it takes buffers with `free_buffer` and hands them over with
    `publish`; what it raises reaches the consumer, which iterates the ring and gives each buffer back with
    `release`.

    The same `depth` buffers circulate whatever the stream's length: reused buffers stay in the CPU cache and
    cost no page faults (handing fresh bytes objects through measured slower here), and producers that can fill
    a buffer in place (sockets, zstd, xz) do so.
    """

    def __init__(self, produce: Callable[[BufferRing], None], *, name: str, depth: int, size: int) -> None:
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._full: queue.Queue[Filled | BaseException | None] = queue.Queue()
        self._stop = threading.Event()
        for _ in range(depth):
            self._free.put(bytearray(size))
        self._produce = produce
        # A daemon: a producer blocked on a dead network must not keep the process alive after a failure.
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._produce(self)
            self._full.put(None)
        except BaseException as e:  # handed to the consumer, which raises it as its own
            self._full.put(e)

    # ---- the producer's side -----------------------------------------------------------------------------

    def free_buffer(self) -> bytearray | None:
        """The next buffer to fill, waiting for the consumer to give one back; None once the ring is closed."""
        buf = self._free.get()
        return None if self._stop.is_set() else buf

    def publish(self, offset: int, buf: bytearray, length: int) -> None:
        self._full.put((offset, buf, length))

    # ---- the consumer's side -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Filled]:
        while True:
            item = self._full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def release(self, buf: bytearray) -> None:
        self._free.put(buf)

    def close(self, wait: float | None = None) -> None:
        """Stop the producer at its next `free_buffer` (waking it if it waits there); `wait` seconds for it."""
        self._stop.set()
        self._free.put(bytearray(0))
        if wait is not None:
            self.thread.join(wait)


class WriteBehind:
    """Asks the kernel, in a thread, to write back and drop what is behind the write head: submitting can block
    while the disk is busy, and the copy must not stop for that. Ranges that pile up meanwhile go in one call."""

    def __init__(self, fd: int, *, name: str, step: int = WRITEBACK_STEP) -> None:
        self._fd = fd
        self._step = step
        self._wanted = 0
        self._done = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def advance(self, offset: int) -> None:
        """The write head is at `offset`."""
        if offset - self._wanted >= self._step:
            with self._cond:
                self._wanted = offset
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted <= self._done and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                start, end = self._done, self._wanted
            try:
                os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_DONTNEED)
            except OSError:
                return  # only an optimisation: the closing fsync writes whatever is left
            self._done = end

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
