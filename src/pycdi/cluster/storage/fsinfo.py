"""Facts about files and filesystems: type, allocated space, data extents (SEEK_DATA/SEEK_HOLE), reflink support."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pycdi import mounts
from pycdi.cluster.storage.errors import StorageError

# _IOW(0x94, 9, int) from linux/fs.h: make dst share src's extents (btrfs, XFS with reflink=1, bcachefs, ...).
FICLONE = 0x40049409

# Errors that mean "this pair of files cannot share extents", not "something is broken": another
# filesystem (EXDEV), a filesystem without reflink (EOPNOTSUPP, ENOTTY, EINVAL), or no such ioctl.
REFLINK_UNSUPPORTED = frozenset({errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS,
                                 errno.EBADF, errno.EPERM})

# Filesystems known to lack reflink: answer without writing probe files into them.
_NO_REFLINK = frozenset({"ext2", "ext3", "ext4", "tmpfs", "ramfs", "vfat", "devtmpfs", "proc", "sysfs",
                         "overlay", "nfs", "nfs4", "fuse", "9p", "virtiofs"})


def clone_fd(src_fd: int, dst_fd: int) -> bool:
    """Reflink all of src into dst (FICLONE); False when the filesystem(s) cannot, raises other errors."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as e:
        if e.errno in REFLINK_UNSUPPORTED:
            return False
        raise
    return True


def mount_of(path: Path) -> mounts.Mount:
    """(mount point, filesystem type, source) of the mount holding path (the longest matching mount point)."""
    try:
        return mounts.mount_of(path)
    except OSError as e:
        raise StorageError.from_os("cannot read the mount table", str(mounts.MOUNTINFO), e) from e


def filesystem_type(path: Path) -> str:
    """The filesystem type ("ext4", "xfs", "tmpfs", ...) that holds path."""
    return mount_of(path)[1]


def allocated_bytes(path: Path) -> int:
    """Space the file takes on disk (st_blocks is in 512-byte units whatever the block size)."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError as e:
        raise StorageError.from_os("cannot stat", path, e) from e


def filesystem_used_bytes(path: Path) -> int:
    """Bytes in use on the filesystem holding path (total minus free, as df counts them)."""
    try:
        st = os.statvfs(path)
    except OSError as e:
        raise StorageError.from_os("cannot statvfs", path, e) from e
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def same_filesystem(a: Path, b: Path) -> bool:
    """Whether two existing paths live on the same mounted filesystem (reflink needs that)."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def data_extents(fd: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each data region of the open file between start and end, holes skipped.

    A filesystem without SEEK_DATA support (EINVAL) yields the whole range as data: still correct,
    only not sparse.
    """
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data after pos: the rest is a hole
                return
            if e.errno == errno.EINVAL and pos == start:
                yield start, end - start
                return
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data
        pos = hole


def range_is_hole(fd: int, start: int, length: int) -> bool:
    """Whether the open regular file has no data in [start, start+length) (reads back as zeros)."""
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:
            return True
        if e.errno == errno.EINVAL:
            return False
        raise
    return data >= start + length


def supports_reflink(directory: Path) -> bool:
    """Whether files created in directory can share extents (probed with FICLONE on two scratch files)."""
    if filesystem_type(directory) in _NO_REFLINK:
        return False
    try:
        with tempfile.TemporaryFile(dir=directory) as a, tempfile.TemporaryFile(dir=directory) as b:
            a.write(b"\x5a" * 4096)
            a.flush()
            return clone_fd(a.fileno(), b.fileno())
    except OSError:
        return False  # cannot even create scratch files: nothing can be cloned into it either
