"""The upload server's task from its environment: upstream cdi-uploadserver's variable names, paths resolved."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..api import upload as u
from ..api.constants import POD_RUNTIME_DIR
from ..api.quantity import quantity_bytes
from ..datapath.config import BLOCK_PATH, DATA_DIR, SCRATCH_DIR
from ..datapath.paths import path_map, resolve
from ..datapath.target import DEFAULT_OVERHEAD, DISK_IMAGE_NAME, Target

DEFAULT_ADDRESS = "0.0.0.0"
DEFAULT_DESTINATION = f"{DATA_DIR}/{DISK_IMAGE_NAME}"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen, with which certificates, and where the upload goes."""

    target: Target
    scratch_dir: str | None = None
    bind_address: str = DEFAULT_ADDRESS
    bind_port: int = u.UPLOAD_SERVER_PORT
    cert_file: str | None = None
    key_file: str | None = None
    #: CA bundle the client certificate must chain to; with `client_name`, only that CN may upload.
    client_ca_file: str | None = None
    client_name: str = u.UPLOAD_CLIENT_NAME
    preallocation: bool = False
    #: Embedded clusters: the host path of the Unix socket also listened on (plain HTTP, for the local proxy).
    local_socket: str | None = None

    @property
    def tls(self) -> bool:
        return bool(self.cert_file and self.key_file)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "t", "true", "yes")


def _file(env: Mapping[str, str], name: str, mapping: dict[str, str]) -> str | None:
    value = env.get(name, "")
    return str(resolve(value, mapping)) if value else None


def config_from_env(env: Mapping[str, str] | None = None) -> ServerConfig:
    """LISTEN_ADDRESS/LISTEN_PORT, DESTINATION, TLS_*_FILE, CLIENT_CERT_FILE, CLIENT_NAME, UPLOAD_IMAGE_SIZE,
    FILESYSTEM_OVERHEAD and PREALLOCATION, as upstream's upload server reads them; and, in an embedded cluster,
    the local socket in the pod's runtime directory (PYCDI_PATH_MAP)."""
    env = os.environ if env is None else env
    mapping = path_map(env)
    destination = env.get("DESTINATION") or DEFAULT_DESTINATION
    block = os.path.normpath(destination) == BLOCK_PATH
    size_text = env.get("UPLOAD_IMAGE_SIZE", "")
    try:
        image_size = quantity_bytes(size_text) if size_text else None
        overhead_text = env.get("FILESYSTEM_OVERHEAD", "")
        overhead = float(overhead_text) if overhead_text else DEFAULT_OVERHEAD
        port = int(env.get("LISTEN_PORT") or u.UPLOAD_SERVER_PORT)
    except (ValueError, ArithmeticError) as err:
        raise ConfigError(f"invalid upload server environment: {err}") from err
    volume_dir = os.path.dirname(destination) if not block else DATA_DIR
    target = Target(volume_mode="Block" if block else "Filesystem", volume_dir=str(resolve(volume_dir, mapping)),
                    device=str(resolve(BLOCK_PATH, mapping)), image_size=image_size, overhead=overhead)
    scratch = str(resolve(SCRATCH_DIR, mapping))
    # Only where the node agent gave the pod a private runtime directory: elsewhere nobody could trust the socket.
    local_socket = str(resolve(u.LOCAL_SOCKET, mapping)) if POD_RUNTIME_DIR in mapping else None
    return ServerConfig(
        target=target,
        scratch_dir=scratch if os.path.isdir(scratch) else None,
        # Empty is allowed (as upstream): all addresses.
        bind_address=env.get("LISTEN_ADDRESS", DEFAULT_ADDRESS) or DEFAULT_ADDRESS,
        bind_port=port,
        cert_file=_file(env, "TLS_CERT_FILE", mapping),
        key_file=_file(env, "TLS_KEY_FILE", mapping),
        client_ca_file=_file(env, "CLIENT_CERT_FILE", mapping),
        client_name=env.get("CLIENT_NAME") or u.UPLOAD_CLIENT_NAME,
        preallocation=_flag(env.get("PREALLOCATION")),
        local_socket=local_socket,
    )
