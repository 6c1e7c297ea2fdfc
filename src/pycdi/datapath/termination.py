"""The worker's termination message: written where the kubelet (our node agent) reads it on exit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .paths import resolve

TERMINATION_PATH_ENV = "PYCDI_TERMINATION_MESSAGE_PATH"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
#: The kubelet keeps at most 4096 bytes of a container's termination message.
MAX_MESSAGE_BYTES = 4096


def message_path() -> Path:
    """The host file for the termination message (the container path resolved through the path map)."""
    return resolve(os.environ.get(TERMINATION_PATH_ENV) or DEFAULT_TERMINATION_PATH)


def write_message(message: str) -> Path:
    """Replace the termination message; a message longer than the kubelet keeps is cut at 4096 bytes."""
    path = message_path()
    data = message.encode()[:MAX_MESSAGE_BYTES]
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_json(value: Any) -> Path:
    """Write a JSON termination message (CDI workers report their results this way)."""
    return write_message(json.dumps(value, separators=(",", ":"), sort_keys=True))
