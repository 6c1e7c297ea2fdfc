"""Image references of a registry source: `docker://[host[:port]/]repository[:tag][@digest]`, as Docker reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import PermanentError

DOCKER_HUB = "docker.io"
#: Docker Hub's API lives on another host than the name images are known by.
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
_SCHEME_DOCKER = "docker://"
_SCHEME_OCI_ARCHIVE = "oci-archive:"
_MAX_NAME = 255
# The grammar of distribution/reference: lowercase path components joined by "/", each made of alphanumeric runs
# joined by one separator (".", "_", "__" or dashes); a host is a dotted name (or IPv6 in brackets) with a port.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])"
    r"(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


@dataclass(frozen=True)
class Reference:
    """One image: the registry host (as written), the repository, and a tag or a digest (the digest wins)."""

    host: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """host[:port] to send API requests to."""
        return DOCKER_HUB_API if self.host in (DOCKER_HUB, "index.docker.io") else self.host

    @property
    def manifest_reference(self) -> str:
        """What `/v2/<repository>/manifests/<reference>` names: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        name = f"{self.host}/{self.repository}"
        return f"{name}@{self.digest}" if self.digest else f"{name}:{self.tag}"


def _invalid(url: str, why: str) -> PermanentError:
    return PermanentError(f'Invalid image name "{url}": {why}')


def parse(url: str) -> Reference:
    """A `docker://` reference; anything else is a PermanentError saying what is wrong."""
    url = url.strip()
    if url.startswith(_SCHEME_OCI_ARCHIVE):
        # An OCI archive is a file inside the importer's own filesystem: nothing a DataVolume can put there.
        raise PermanentError(
            f'Invalid image name "{url}": oci-archive images are not supported; push the image to a registry and '
            "import it with a docker:// URL"
        )
    if not url.startswith(_SCHEME_DOCKER):
        raise _invalid(url, "expected docker://[host[:port]/]repository[:tag|@digest]")
    name = url[len(_SCHEME_DOCKER) :]
    if not name:
        raise _invalid(url, "no image named")
    digest = None
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise _invalid(url, f"malformed digest {digest!r}")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a colon after the last slash starts the tag; one before it belongs to host:port
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise _invalid(url, f"malformed tag {tag!r}")
    host, _, path = name.partition("/")
    # Docker's rule: the first component is a host only if it could not be a repository component.
    if not path or ("." not in host and ":" not in host and host != "localhost" and host.lower() == host):
        host, path = DOCKER_HUB, name
    if not _HOST.fullmatch(host):
        raise _invalid(url, f"malformed registry host {host!r}")
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(path) + len(host) + 1 > _MAX_NAME:
        raise _invalid(url, f"the repository name is longer than {_MAX_NAME} characters")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            hint = " (repository names are lowercase)" if _COMPONENT.fullmatch(component.lower()) else ""
            raise _invalid(url, f"malformed repository component {component!r}{hint}")
    if digest is None and tag is None:
        tag = DEFAULT_TAG
    return Reference(host, path, None if digest else tag, digest)
