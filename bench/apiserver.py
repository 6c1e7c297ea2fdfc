"""API server benchmark: creates/s, updates/s, gets/s, list of 10,000 DataVolumes, watch fan-out latency, RSS."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from tests.support.cluster import Cluster

from .common import vm_hwm_mb

OBJECTS = 10_000
CLIENTS = 8
WATCHERS = 100
WATCH_WRITES = 200
NAMESPACE = "bench"


def datavolume(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
        "metadata": {"name": f"dv-{i:05d}", "labels": {"bench": "yes", "shard": str(i % 10)}},
        "spec": {"source": {"http": {"url": f"http://images.example/disk-{i}.qcow2"}},
                 "storage": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    }


async def _spread(session: aiohttp.ClientSession, count: int, fn: Any) -> float:
    """Run fn(session, i) for i in range(count) from CLIENTS concurrent workers; returns operations/s."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await fn(session, queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return count / (time.perf_counter() - start)


async def measure(cluster: Cluster) -> dict[str, float]:
    base = cluster.server
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=cluster.ssl_context(), limit=CLIENTS * 2 + WATCHERS + 10)
    results: dict[str, float] = {}
    dv_path = f"{base}/apis/cdi.kubevirt.io/v1beta1/namespaces/{NAMESPACE}/datavolumes"
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async with session.post(f"{base}/api/v1/namespaces",
                                json={"metadata": {"name": NAMESPACE}}) as resp:
            assert resp.status in (201, 409), await resp.text()

        async def create(s: aiohttp.ClientSession, i: int) -> None:
            async with s.post(dv_path, json=datavolume(i)) as r:
                assert r.status == 201, await r.text()

        async def update(s: aiohttp.ClientSession, i: int) -> None:
            patch = {"metadata": {"annotations": {"bench/round": str(i)}}}
            async with s.patch(f"{dv_path}/dv-{i:05d}", json=patch,
                               headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200, await r.text()

        async def get(s: aiohttp.ClientSession, i: int) -> None:
            async with s.get(f"{dv_path}/dv-{i % OBJECTS:05d}") as r:
                assert r.status == 200
                await r.read()

        results["apiserver.creates_per_s"] = await _spread(session, OBJECTS, create)
        results["apiserver.updates_per_s"] = await _spread(session, 5000, update)
        results["apiserver.gets_per_s"] = await _spread(session, 10000, get)

        list_times = []
        for _ in range(3):
            start = time.perf_counter()
            async with session.get(dv_path) as r:
                body = await r.json()
            list_times.append(time.perf_counter() - start)
            assert len(body["items"]) == OBJECTS
        results["apiserver.list_10000_dv_s"] = statistics.median(list_times)
        results.update(await watch_latency(session, base))
    results["apiserver.peak_rss_mb"] = vm_hwm_mb(cluster.process.pid) if cluster.process else 0.0
    return results


async def watch_latency(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    path = f"{base}/api/v1/namespaces/{NAMESPACE}/configmaps"
    async with session.get(path) as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    ready = 0
    all_ready = asyncio.Event()

    async def watcher() -> None:
        nonlocal ready
        async with session.get(path, params={"watch": "true", "resourceVersion": rv,
                                             "timeoutSeconds": "120"}) as resp:
            ready += 1
            if ready == WATCHERS:
                all_ready.set()
            seen = 0
            async for line in resp.content:
                now = time.perf_counter()
                name = __import__("json").loads(line)["object"]["metadata"]["name"]
                latencies.append(now - sent[name])
                seen += 1
                if seen == WATCH_WRITES:
                    return

    tasks = [asyncio.create_task(watcher()) for _ in range(WATCHERS)]
    await asyncio.wait_for(all_ready.wait(), 60)
    await asyncio.sleep(0.5)  # let every watch register on the server before the first write
    for i in range(WATCH_WRITES):
        name = f"cm-{i}"
        sent[name] = time.perf_counter()
        async with session.post(path, json={"metadata": {"name": name}, "data": {"i": str(i)}}) as r:
            assert r.status == 201
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    latencies.sort()
    return {
        "apiserver.watch_fanout_p50_ms": 1000 * latencies[len(latencies) // 2],
        "apiserver.watch_fanout_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-") as tmp:
        cluster = Cluster(Path(tmp))
        cluster.start()
        try:
            results = asyncio.run(measure(cluster))
        finally:
            cluster.stop()
    print("apiserver (targets: >=1000 creates/s with 8 clients, p99 watch < 50 ms, list 10k DVs < 1 s, "
          "RSS < 300 MB)")
    for k, v in results.items():
        print(f"  {k}: {v:.3f}")
    return results
