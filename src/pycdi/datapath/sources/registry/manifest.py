"""Image manifests and indexes (OCI, Docker schema 2): descriptors, their checks, and the platform choice."""

from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import PermanentError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
#: Sent as `Accept` on manifest requests: without the list types a registry may answer for one platform only.
ACCEPT = ", ".join((*INDEX_TYPES, *IMAGE_TYPES))
#: Larger manifests are refused (containers/image's limit): they are held in memory.
MAX_MANIFEST = 4 << 20
#: Digest algorithms we can verify.
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
#: Kernel machine names -> the GOARCH names image platforms use.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "armv6l": "arm", "armhf": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64"}
_ATTESTATION = "attestation-manifest"


def node_architecture() -> str:
    """This node's architecture in GOARCH terms (upstream pulls the node's when the DataVolume names none)."""
    return _GOARCH.get(platform.machine().lower(), "amd64")


def split_architecture(text: str) -> tuple[str, str | None]:
    """`arm64`, `arm/v7`, `x86_64` -> (GOARCH name, variant or None)."""
    arch, _, variant = text.strip().lower().partition("/")
    return _GOARCH.get(arch, arch), variant or None


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or another manifest."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def platform_name(self) -> str:
        p = self.platform
        name = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
        return f"{name}/{p['variant']}" if p.get("variant") else name


def check_digest(digest: str, what: str) -> tuple[str, str]:
    """`sha256:<hex>` -> (algorithm, hex); an algorithm we cannot verify, or a malformed digest, is permanent."""
    algorithm, sep, hexdigest = digest.partition(":")
    if not sep or algorithm not in _ALGORITHMS:
        raise PermanentError(f"{what} has digest {digest!r}; only {', '.join(_ALGORITHMS)} digests are supported")
    if len(hexdigest) != _ALGORITHMS[algorithm] or not _HEX.fullmatch(hexdigest):
        raise PermanentError(f"{what} has a malformed digest {digest!r}")
    return algorithm, hexdigest


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def descriptor(obj: object, what: str) -> Descriptor:
    """A checked descriptor from its JSON."""
    if not isinstance(obj, dict):
        raise PermanentError(f"{what} is not a descriptor object")
    digest, size = obj.get("digest"), obj.get("size")
    if not isinstance(digest, str):
        raise PermanentError(f"{what} has no digest")
    check_digest(digest, what)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise PermanentError(f"{what} has no valid size")
    plat, annotations = obj.get("platform"), obj.get("annotations")
    return Descriptor(str(obj.get("mediaType") or ""), digest, size, plat if isinstance(plat, dict) else {},
                      annotations if isinstance(annotations, dict) else {})


@dataclass(frozen=True)
class Manifest:
    """A fetched manifest: an index (`manifests` set) or an image (`layers` set), with its own digest."""

    media_type: str
    digest: str
    manifests: list[Descriptor] = field(default_factory=list)
    layers: list[Descriptor] = field(default_factory=list)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse(body: bytes, content_type: str, name: str, expected_digest: str | None = None) -> Manifest:
    """Check and parse a manifest body. `expected_digest`: the digest it was fetched by (or the registry's
    Docker-Content-Digest), which the bytes must match."""
    algorithm = "sha256"
    if expected_digest:
        algorithm, _ = check_digest(expected_digest, f"the manifest of {name}")
    digest = digest_of(body, algorithm)
    if expected_digest and digest != expected_digest:
        raise PermanentError(f"the manifest of {name} does not match its digest: expected {expected_digest}, got "
                             f"{digest}")
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise PermanentError(f"the manifest of {name} is not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise PermanentError(f"the manifest of {name} is not a JSON object")
    declared = content_type.split(";")[0].strip().lower()
    media_type = str(doc.get("mediaType") or "") or declared
    if doc.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
        raise PermanentError(f"{name} has a Docker schema 1 manifest, which is not supported (deprecated since "
                             "2017); push the image again with a current tool")
    if media_type not in (*INDEX_TYPES, *IMAGE_TYPES):
        # An OCI manifest may omit mediaType and be served as application/json: its fields tell.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else media_type
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise PermanentError(f"the index of {name} has no manifests list")
        return Manifest(media_type, digest,
                        manifests=[descriptor(e, f"manifest entry {i} of {name}") for i, e in enumerate(entries)])
    if media_type in IMAGE_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise PermanentError(f"the manifest of {name} has no layers list")
        return Manifest(media_type, digest,
                        layers=[descriptor(e, f"layer {i} of {name}") for i, e in enumerate(layers)])
    raise PermanentError(f"{name} has a manifest of unsupported type {media_type or declared or '(none)'}")


def choose(index: Manifest, architecture: str, name: str) -> Descriptor:
    """The index entry for linux on `architecture` (`amd64`, `arm64`, `arm/v7`...), as a container runtime picks.

    Attestation entries (BuildKit's `unknown/unknown`) are skipped; with a variant asked for, an exact variant is
    preferred, then an entry that names none.
    """
    arch, variant = split_architecture(architecture)
    entries = [d for d in index.manifests if d.annotations.get("vnd.docker.reference.type") != _ATTESTATION]
    if len(entries) == 1 and not entries[0].platform:
        return entries[0]  # a one-entry index without platforms: nothing to choose between
    matches = [d for d in entries
               if d.platform.get("os") == "linux" and split_architecture(str(d.platform.get("architecture", "")))[0]
               == arch]
    if variant:
        exact = [d for d in matches if str(d.platform.get("variant", "")).lower() == variant]
        matches = exact or [d for d in matches if not d.platform.get("variant")]
    if not matches:
        listed = ", ".join(d.platform_name for d in entries) or "nothing"
        wanted = f"linux/{arch}" + (f"/{variant}" if variant else "")
        raise PermanentError(f"image {name} has no {wanted} manifest; its index lists {listed}")
    return matches[0]
