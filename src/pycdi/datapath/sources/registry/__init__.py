"""registry source: the disk of a KubeVirt containerDisk image, pulled from an OCI/Docker distribution registry."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ...errors import PermanentError
from ..base import Probe
from ..http import HttpConfig
from . import manifest as mf
from . import reference
from .auth import Credentials
from .client import RegistryClient
from .disk import DiskStream, RawBlob

log = logging.getLogger(__name__)
#: Indexes may name indexes; deeper nesting than this is refused.
_MAX_NESTING = 3


class RegistrySource:
    """One image reference, its registry's client, and the architecture to pick from a multi-arch index."""

    def __init__(self, url: str, client: RegistryClient, architecture: str) -> None:
        self.url = url
        self.client = client
        self.architecture = architecture
        self._image: mf.Manifest | None = None

    @property
    def name(self) -> str:
        return self.url

    def ranged(self) -> HttpConfig | None:
        return None  # the disk is a member inside (compressed) layers: no URL serves its bytes by ranges

    def _resolve(self) -> mf.Manifest:
        """The image manifest: the reference's, or the index entry for linux on our architecture."""
        if self._image is not None:
            return self._image
        ref = self.client.ref
        found = self.client.manifest(ref.manifest_reference, self.url)
        for _ in range(_MAX_NESTING):
            if not found.is_index:
                break
            entry = mf.choose(found, self.architecture, self.url)
            log.info("%s: picked the %s manifest %s from the index", self.url, entry.platform_name, entry.digest)
            found = self.client.manifest(entry.digest, self.url)
        if found.is_index:
            raise PermanentError(f"{self.url}: indexes nested more than {_MAX_NESTING} deep")
        self._image = found
        return found

    def probe(self) -> Probe:
        image = self._resolve()
        return Probe(None, False, image.media_type, self.url)

    def _open_blob(self, desc: mf.Descriptor, what: str) -> RawBlob:
        return self.client.blob(desc.digest, what)

    def open(self) -> DiskStream:
        image = self._resolve()
        return DiskStream(image.layers, self._open_blob, self.url)


def from_env(env: Mapping[str, str], cert_dirs: list[str | None], insecure: bool) -> RegistrySource:
    """The registry source the importer's environment describes (upstream's names: IMPORTER_ENDPOINT,
    IMPORTER_ACCESS_KEY_ID / IMPORTER_SECRET_KEY, IMPORTER_CERT_DIR via `cert_dirs`, INSECURE_TLS via `insecure`,
    IMPORTER_REGISTRY_IMAGE_ARCHITECTURE).

    `pullMethod: node` is served the same way: upstream then lets the node's container runtime pull the image,
    but on the embedded cluster the node is this machine, so pulling here reaches the same registry with the
    same network and trust; only the credentials differ (the secretRef instead of the node's pull secrets).
    """
    url = env.get("IMPORTER_ENDPOINT", "")
    ref = reference.parse(url)
    access, secret = env.get("IMPORTER_ACCESS_KEY_ID", ""), env.get("IMPORTER_SECRET_KEY", "")
    # Upstream uses the credentials only when both are set.
    credentials = Credentials(access, secret) if access and secret else None
    architecture = env.get("IMPORTER_REGISTRY_IMAGE_ARCHITECTURE", "").strip() or mf.node_architecture()
    client = RegistryClient(ref, cert_dirs, insecure, credentials)
    return RegistrySource(url.strip(), client, architecture)


__all__ = ["RegistrySource", "from_env"]
