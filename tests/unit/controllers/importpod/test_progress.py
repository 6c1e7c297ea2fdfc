"""Progress read from the importer's real Prometheus endpoint."""

from __future__ import annotations

import aiohttp
from prometheus_client import generate_latest

from pycdi.controllers.importpod.progress import format_progress, progress_from_metrics, scrape
from pycdi.datapath.progress import Progress


def test_parse_the_importers_page() -> None:
    mine, other = Progress("uid-1"), Progress("uid-2")
    mine.set(12.345)
    other.set(99.0)
    text = generate_latest(mine.registry).decode() + generate_latest(other.registry).decode()
    assert progress_from_metrics(text, "uid-1") == 12.345
    assert progress_from_metrics(text, "uid-2") == 99.0
    assert progress_from_metrics(text, "uid-3") is None
    assert progress_from_metrics("kubevirt_cdi_import_progress_created{ownerUID=\"uid-1\"} 1.7e9\n", "uid-1") is None
    assert format_progress(12.345) == "12.35%"
    assert format_progress(100.0) == "100.00%"


async def test_scrape_a_served_endpoint() -> None:
    progress = Progress("owner")
    port = progress.serve(0, "127.0.0.1")
    progress.set(45.678)
    async with aiohttp.ClientSession() as session:
        assert await scrape(session, "127.0.0.1", port, "owner") == 45.678
        assert await scrape(session, "127.0.0.1", port, "someone-else") is None
        # Nothing listening (the importer exited): no value, no error.
        progress_gone = Progress("x")
        closed = progress_gone.serve(0, "127.0.0.1")
        assert await scrape(session, "127.0.0.2", closed, "x") is None
