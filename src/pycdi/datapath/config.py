"""The importer's task from its environment: upstream CDI's variable names, container paths resolved."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from ..api.quantity import quantity_bytes
from .errors import PermanentError
from .importer import ImportRequest
from .paths import path_map, resolve
from .progress import Progress
from .sources.base import Source
from .sources.http import HttpConfig
from .target import DEFAULT_OVERHEAD, Target

DATA_DIR = "/data"
SCRATCH_DIR = "/scratch"
BLOCK_PATH = "/dev/cdi-block-volume"
CERT_DIR = "/certs"
PROXY_CERT_DIR = "/proxycerts/"
SECRET_EXTRA_HEADERS_DIR = "/extraheaders"
EXTRA_HEADER_PREFIX = "IMPORTER_EXTRA_HEADER_"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "t")


def _first(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    return ""


def extra_headers(env: Mapping[str, str], secret_dir: str | None) -> list[str]:
    """`IMPORTER_EXTRA_HEADER_<n>` values, then every file of the mounted secretExtraHeaders secrets."""
    headers = [env[k] for k in sorted(env) if k.startswith(EXTRA_HEADER_PREFIX) and env[k]]
    if secret_dir and os.path.isdir(secret_dir):
        for path in sorted(Path(secret_dir).rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(secret_dir).parts):
                text = path.read_text(errors="replace").strip()
                if text:
                    headers.append(text)
    return headers


def volume_mode(env: Mapping[str, str], device: str) -> str:
    """`IMPORTER_VOLUME_MODE` when set, else Block when the block path exists (as upstream decides)."""
    explicit = env.get("IMPORTER_VOLUME_MODE", "")
    if explicit in ("Block", "Filesystem"):
        return explicit
    try:
        mode = os.stat(device).st_mode
    except FileNotFoundError:
        return "Filesystem"
    return "Block" if stat.S_ISBLK(mode) or stat.S_ISREG(mode) else "Filesystem"


def request_from_env(env: Mapping[str, str] | None = None) -> ImportRequest:
    """Build the ImportRequest the environment describes."""
    env = os.environ if env is None else env
    mapping = path_map(env)
    device = str(resolve(BLOCK_PATH, mapping))
    size_text = env.get("IMPORTER_IMAGE_SIZE", "")
    try:
        image_size = quantity_bytes(size_text) if size_text else None
        overhead_text = _first(env, "FILESYSTEM_OVERHEAD", "IMPORTER_FILESYSTEM_OVERHEAD")
        overhead = float(overhead_text) if overhead_text else DEFAULT_OVERHEAD
    except (ValueError, ArithmeticError) as err:
        raise PermanentError(f"invalid importer environment: {err}") from err
    target = Target(
        volume_mode=volume_mode(env, device),
        volume_dir=str(resolve(DATA_DIR, mapping)),
        device=device,
        image_size=image_size,
        overhead=overhead,
    )
    source = env.get("IMPORTER_SOURCE", "") or "http"
    scratch = str(resolve(SCRATCH_DIR, mapping))
    http = None
    reader: Source | None = None
    cert_dirs: list[str | None] = [
        str(resolve(env["IMPORTER_CERT_DIR"], mapping)) if env.get("IMPORTER_CERT_DIR") else None,
        str(resolve(env.get("IMPORTER_PROXY_CERT_DIR") or PROXY_CERT_DIR, mapping)),
    ]
    insecure = _flag(env.get("INSECURE_TLS"))
    if source == "http":
        secret_dir = str(resolve(env.get("IMPORTER_SECRET_EXTRA_HEADERS_PATH") or SECRET_EXTRA_HEADERS_DIR, mapping))
        http = HttpConfig(
            url=env.get("IMPORTER_ENDPOINT", ""),
            access_key=env.get("IMPORTER_ACCESS_KEY_ID", ""),
            secret_key=env.get("IMPORTER_SECRET_KEY", ""),
            cert_dirs=cert_dirs,
            insecure=insecure,
            headers=extra_headers(env, secret_dir),
        )
    # Imported here: botocore alone takes a third of a second to load, which every importer pod would pay.
    elif source == "registry":
        from .sources import registry

        reader = registry.from_env(env, cert_dirs, insecure)
    elif source == "s3":
        from .sources import s3

        reader = s3.from_env(env, cert_dirs, insecure)
    nbd = env.get("PYCDI_NBDKIT", "auto").lower()
    progress_file = env.get("PYCDI_PROGRESS_FILE")
    return ImportRequest(
        source=source,
        target=target,
        content_type=env.get("IMPORTER_CONTENTTYPE", "") or "kubevirt",
        http=http,
        reader=reader,
        scratch_dir=scratch if os.path.isdir(scratch) else None,
        preallocation=_flag(_first(env, "PREALLOCATION", "IMPORTER_PREALLOCATION")),
        checksum=env.get("IMPORTER_CHECKSUM") or None,
        try_direct_io=env.get("CACHE_MODE", "") == "TRYNONE",
        use_nbdkit={"always": True, "never": False}.get(nbd),
        progress=Progress(env.get("OWNER_UID", ""), str(resolve(progress_file, mapping)) if progress_file else None),
    )

