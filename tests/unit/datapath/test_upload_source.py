"""The upload source's bridge from an event loop to a reader thread: order, bounded memory, both ends stopping."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

import pytest

from pycdi.datapath.errors import PermanentError, TransientError
from pycdi.datapath.sources.upload import ConsumerGone, StreamFeed, UploadSource


async def test_bytes_arrive_in_order_with_bounded_buffering() -> None:
    loop = asyncio.get_running_loop()
    feed = StreamFeed(loop, limit=64 << 10)
    chunks = [os.urandom(n) for n in (1, 10_000, 70_000, 3, 200_000, 65_536)] * 5
    source = UploadSource(feed, sum(map(len, chunks)))
    stream = source.open()
    digest = hashlib.sha256()
    peak = 0

    def consume() -> None:
        nonlocal peak
        while True:
            peak = max(peak, feed._queued)  # what the producer was allowed to queue
            data = stream.read(32 << 10)
            if not data:
                return
            assert len(data) <= 32 << 10
            digest.update(data)

    reader = asyncio.ensure_future(asyncio.to_thread(consume))
    for chunk in chunks:
        await feed.put(chunk)
    feed.finish()
    await reader
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert stream.count == sum(map(len, chunks))
    # The producer waits once the limit is reached: at most one chunk beyond it is ever queued.
    assert peak < (64 << 10) + max(map(len, chunks))


async def test_a_slow_reader_holds_the_producer_back() -> None:
    loop = asyncio.get_running_loop()
    feed = StreamFeed(loop, limit=1 << 20)
    release = threading.Event()
    got: list[int] = []

    def consume() -> None:
        release.wait()
        while data := feed.read(1 << 20):
            got.append(len(data))

    reader = asyncio.ensure_future(asyncio.to_thread(consume))
    await feed.put(bytes(1 << 20))  # fills the buffer
    blocked = asyncio.ensure_future(feed.put(bytes(1 << 20)))
    await asyncio.sleep(0)  # let it try: it must wait, the buffer is full
    assert not blocked.done()
    release.set()
    await asyncio.wait_for(blocked, 10)
    feed.finish()
    await reader
    assert sum(got) == 2 << 20


async def test_a_broken_body_fails_the_reader() -> None:
    loop = asyncio.get_running_loop()
    feed = StreamFeed(loop)
    stream = UploadSource(feed, None).open()
    await feed.put(b"abc")
    feed.abort(TransientError("the upload was interrupted"))
    with pytest.raises(TransientError, match="interrupted"):
        await asyncio.to_thread(stream.read, 10)


async def test_a_short_body_is_an_error_not_an_end() -> None:
    loop = asyncio.get_running_loop()
    feed = StreamFeed(loop)
    stream = UploadSource(feed, 10).open()
    await feed.put(b"12345")
    feed.finish()
    assert await asyncio.to_thread(stream.read, 100) == b"12345"
    with pytest.raises(TransientError, match="5 of 10 bytes"):
        await asyncio.to_thread(stream.read, 100)


async def test_a_reader_that_stops_releases_a_waiting_producer() -> None:
    loop = asyncio.get_running_loop()
    feed = StreamFeed(loop, limit=10)
    await feed.put(b"0123456789")
    waiting = asyncio.ensure_future(feed.put(b"more"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await asyncio.to_thread(UploadSource(feed, None).open().close)
    with pytest.raises(ConsumerGone):
        await asyncio.wait_for(waiting, 10)
    with pytest.raises(ConsumerGone):
        await feed.put(b"again")


def test_source_reads_once_and_offers_no_ranges() -> None:
    loop = asyncio.new_event_loop()
    try:
        source = UploadSource(StreamFeed(loop), 5, "application/octet-stream")
        probe = source.probe()
        assert (probe.size, probe.accepts_ranges, probe.content_type) == (5, False, "application/octet-stream")
        assert source.ranged() is None
        source.open()
        with pytest.raises(RuntimeError):
            source.open()
    finally:
        loop.close()


def test_errors_raised_by_the_producer_reach_the_reader_as_they_are() -> None:
    loop = asyncio.new_event_loop()
    try:
        feed = StreamFeed(loop)
        feed.abort(PermanentError("the form has no 'file' field"))
        with pytest.raises(PermanentError, match="'file'"):
            feed.read()
    finally:
        loop.close()
