"""The rate-limited work queue: dedup, exclusivity, delays and per-key exponential back-off."""

from __future__ import annotations

import asyncio

from pycdi.controllers.runtime import RateLimitingQueue


async def test_a_waiting_key_is_queued_once() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_a_key_added_while_processing_comes_back_only_after_done() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_back_off_doubles_per_key_up_to_the_cap_and_forget_resets() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(base_delay=0.01, max_delay=0.05)
    assert [q.when("a") for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.num_requeues("a") == 5
    assert q.when("b") == 0.01  # per key
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.when("a") == 0.01


async def test_rate_limited_add_arrives_after_its_delay() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(base_delay=0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert q.add_rate_limited("a") == 0.01
    assert len(q) == 0 and q.pending() == {"a"}
    assert await asyncio.wait_for(q.get(), 5) == "a"
    assert loop.time() - start >= 0.01


async def test_the_earliest_delayed_add_wins() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    q.add_after("late", 60)
    q.add_after("a", 60)
    q.add_after("a", 0.001)  # replaces the 60 s timer
    assert await asyncio.wait_for(q.get(), 5) == "a"
    q.shutdown()


async def test_shutdown_wakes_waiting_workers() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    waiters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)  # let them block (a yield to the loop, not a timed wait)
    q.shutdown()
    assert await asyncio.gather(*waiters) == [None, None, None]
    q.add("a")
    assert len(q) == 0
