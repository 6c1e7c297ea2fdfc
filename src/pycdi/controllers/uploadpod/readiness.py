"""Is the upload server answering? The pod's readiness probe (GET /healthz over HTTPS), run by the controller:
a kubelet that runs no probes reports a container ready as soon as it starts, before the server listens."""

from __future__ import annotations

import logging
import ssl

import aiohttp

from ...api import upload as u

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0


def probe_context(server_ca_pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=server_ca_pem.decode())


async def server_answers(pod_ip: str, hostname: str, context: ssl.SSLContext,
                         port: int = u.UPLOAD_SERVER_PORT) -> bool:
    """True when https://<pod IP>:<port>/healthz answers 200 with the certificate issued for `hostname`."""
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    url = f"https://{host}:{port}{u.HEALTHZ_PATH}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, force_close=True)) as session:
            async with session.get(url, server_hostname=hostname,
                                   timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)) as response:
                return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError) as err:
        log.debug("probing %s failed: %s", url, err)
        return False
