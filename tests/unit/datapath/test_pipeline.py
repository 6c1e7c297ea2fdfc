"""The buffer ring between the data path's threads: order, reuse, errors and stopping."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pycdi.datapath.pipeline import BufferRing, WriteBehind


def test_frames_arrive_in_order_in_the_same_few_buffers() -> None:
    def produce(ring: BufferRing) -> None:
        for i in range(50):
            buf = ring.free_buffer()
            assert buf is not None
            buf[:4] = i.to_bytes(4, "big")
            ring.publish(i * 10, buf, 4)

    ring = BufferRing(produce, name="test-ring", depth=3, size=16)
    seen, buffers = [], set()
    for offset, buf, n in ring:
        seen.append((offset, int.from_bytes(buf[:n], "big")))
        buffers.add(id(buf))
        ring.release(buf)
    assert seen == [(i * 10, i) for i in range(50)]
    assert len(buffers) <= 3
    ring.thread.join(5)
    assert not ring.thread.is_alive()


def test_the_producers_error_is_raised_by_the_consumer_after_what_came_before() -> None:
    def produce(ring: BufferRing) -> None:
        buf = ring.free_buffer()
        assert buf is not None
        ring.publish(0, buf, 1)
        raise OSError("the source ended early")

    ring = BufferRing(produce, name="test-ring", depth=2, size=8)
    got = []
    with pytest.raises(OSError, match="ended early"):
        for offset, buf, _ in ring:
            got.append(offset)
            ring.release(buf)
    assert got == [0]


def test_close_stops_a_producer_waiting_for_a_buffer() -> None:
    handed = threading.Event()

    def produce(ring: BufferRing) -> None:
        while (buf := ring.free_buffer()) is not None:
            ring.publish(0, buf, 0)
            handed.set()

    ring = BufferRing(produce, name="test-ring", depth=1, size=8)
    assert handed.wait(5)  # its only buffer is out: the producer now waits for one back
    ring.close(wait=5)
    assert not ring.thread.is_alive()


def test_write_behind_follows_the_head_and_ends_with_close(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        behind = WriteBehind(fd, name="test-writeback", step=4096)
        for offset in range(4096, 10 * 4096, 4096):
            os.pwrite(fd, b"\1" * 4096, offset - 4096)
            behind.advance(offset)
        behind.close()
        assert not any(t.name == "test-writeback" for t in threading.enumerate())
        assert os.pread(fd, 4096, 8 * 4096 - 4096) == b"\1" * 4096
    finally:
        os.close(fd)
