"""Safe tar extraction into a volume: nothing is written, linked or created outside the root."""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import IO, cast

from .errors import PermanentError
from .formats import Readable

_CHUNK = 1 << 20


class UnsafeArchive(PermanentError):
    """A member tries to escape the volume or is a kind of file a volume must not receive."""


def _member_path(name: str) -> str:
    """The member's normalised relative path; absolute paths and `..` components are refused."""
    if name.startswith(("/", "\\")):
        raise UnsafeArchive(f"archive member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"archive member {name!r} escapes the volume with '..'")
    return "/".join(parts)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _checked_parent(root: str, rel: str) -> str:
    """The real directory that will hold `rel`, created as needed; refused when links lead it outside."""
    parent = os.path.join(root, posixpath.dirname(rel)) if posixpath.dirname(rel) else root
    os.makedirs(parent, exist_ok=True)
    real = os.path.realpath(parent)
    if not _inside(root, real):
        raise UnsafeArchive(f"archive member {rel!r} would be written outside the volume through a link")
    return real


def extract(stream: Readable, root: str, cap: int) -> int:
    """Extract a tar stream into `root`; at most `cap` bytes of file data. Returns the bytes written."""
    root = os.path.realpath(root)
    total = 0
    try:
        archive = tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|")
    except tarfile.TarError as err:
        raise PermanentError(f"not a valid tar archive: {err}") from err
    with archive:
        try:
            for member in archive:
                total += _extract_member(archive, member, root, cap - total)
        except tarfile.TarError as err:
            raise PermanentError(f"corrupt tar archive: {err}") from err
    return total


def _extract_member(archive: tarfile.TarFile, member: tarfile.TarInfo, root: str, room: int) -> int:
    rel = _member_path(member.name)
    if not rel:
        return 0
    parent = _checked_parent(root, rel)
    dest = os.path.join(parent, posixpath.basename(rel))
    if member.isdir():
        if os.path.islink(dest):
            raise UnsafeArchive(f"archive member {member.name!r} replaces a link with a directory")
        os.makedirs(dest, exist_ok=True)
        os.chmod(dest, 0o755)
        return 0
    if member.issym():
        target = member.linkname
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"archive member {member.name!r} is a link pointing out of the volume ({target})")
        _replace(dest)
        os.symlink(target, dest)
        return 0
    if member.islnk():
        source_rel = _member_path(member.linkname)
        source = os.path.realpath(os.path.join(root, source_rel))
        if not _inside(root, source) or not os.path.isfile(source):
            raise UnsafeArchive(
                f"archive member {member.name!r} is a hard link to {member.linkname!r} outside the volume"
            )
        _replace(dest)
        os.link(source, dest)
        return 0
    if not member.isreg():
        raise UnsafeArchive(f"archive member {member.name!r} is a device, fifo or other special file")
    if member.size > room:
        raise PermanentError(
            f"archive content is larger than the reported available storage: member {member.name!r} "
            f"needs {member.size} bytes, {max(room, 0)} left. A larger PVC is required"
        )
    src = archive.extractfile(member)
    assert src is not None
    _replace(dest)
    # O_NOFOLLOW|O_EXCL: a link planted at dest can never redirect the write.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        while chunk := src.read(_CHUNK):
            os.write(fd, chunk)
        os.fchmod(fd, member.mode & 0o777 or 0o644)
    finally:
        os.close(fd)
    return member.size


def _replace(dest: str) -> None:
    """Remove what is at dest (a file or link from an earlier member), never following a link."""
    if os.path.islink(dest) or os.path.isfile(dest):
        os.unlink(dest)
    elif os.path.isdir(dest):
        raise UnsafeArchive(f"archive member would replace the directory {dest}")
