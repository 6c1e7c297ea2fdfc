"""Import progress scraped from the importer's Prometheus endpoint, as upstream's `updateProgressUsingPod`."""

from __future__ import annotations

import logging
import re

import aiohttp

from ...datapath.progress import METRIC_NAME

log = logging.getLogger(__name__)

#: prometheus_client exposes counters with `_total`.
SERIES = f"{METRIC_NAME}_total"
SCRAPE_TIMEOUT = 2.0
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def progress_from_metrics(text: str, owner_uid: str) -> float | None:
    """The percentage of the series labelled with this owner, or None when the page has none."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match.group("name") != SERIES:
            continue
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        if labels.get("ownerUID") != owner_uid:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            return None
        return min(100.0, max(0.0, value))
    return None


def format_progress(percent: float) -> str:
    """Upstream's `%.2f%%`."""
    return f"{percent:.2f}%"


async def scrape(session: aiohttp.ClientSession, pod_ip: str, port: int, owner_uid: str) -> float | None:
    """One scrape of http://<pod IP>:<port>/metrics; None when the endpoint is not (or no longer) there."""
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    url = f"http://{host}:{port}/metrics"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)) as response:
            if response.status != 200:
                return None
            return progress_from_metrics(await response.text(), owner_uid)
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        log.debug("scraping %s failed: %s", url, err)
        return None
