"""Loop devices through the kernel's ioctls (/dev/loop-control, LOOP_CONFIGURE) and sysfs, without losetup.

Why ioctls rather than the `losetup` command: attaching is one atomic LOOP_CONFIGURE call on a device
that LOOP_CTL_GET_FREE handed out, so two processes racing for the same free device see EBUSY and simply
take the next one (losetup --find has the same race but reports it as text); failures come back as errno
values that StorageError can name instead of localized messages to parse; there is no fork+exec per call;
and nothing depends on util-linux being in the image. Lookups read sysfs (/sys/block/loopN/loop/...), which
also sees devices that users attached with `losetup` (as the seed documents do).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

from pycdi.cluster.storage.errors import StorageError

LOOP_MAJOR = 7
LOOP_CONTROL = Path("/dev/loop-control")
SYS_BLOCK = Path("/sys/block")

# linux/loop.h
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_CAPACITY = 0x4C07
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
LO_NAME_SIZE = 64

# struct loop_info64: lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit (u64); lo_number,
# lo_encrypt_type, lo_encrypt_key_size, lo_flags (u32); lo_file_name[64], lo_crypt_name[64],
# lo_encrypt_key[32]; lo_init[2] (u64).  struct loop_config: fd, block_size (u32), info, __reserved[8] (u64).
_INFO64 = struct.Struct("=5Q4I64s64s32s2Q")
_CONFIG = struct.Struct(f"=2I{_INFO64.size}s8Q")
_ATTACH_ATTEMPTS = 32


def available() -> bool:
    """Whether this process may create loop devices: root (CAP_SYS_ADMIN) and a usable /dev/loop-control."""
    if os.geteuid() != 0:
        return False
    try:
        fd = os.open(LOOP_CONTROL, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def is_loop_device(path: Path) -> bool:
    """Whether path is (a link to) a loop block device."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == LOOP_MAJOR


def _sysfs_dir(device: Path) -> Path:
    return SYS_BLOCK / Path(os.path.realpath(device)).name


def backing_file(device: Path) -> Path | None:
    """The file behind an attached loop device, or None when the device is free (or not a loop device)."""
    try:
        text = (_sysfs_dir(device) / "loop" / "backing_file").read_text().rstrip("\n")
    except OSError:
        return None
    return Path(text) if text else None


def offset(device: Path) -> int:
    """Byte offset into the backing file where the device starts (losetup --offset; ours use 0)."""
    try:
        return int((_sysfs_dir(device) / "loop" / "offset").read_text())
    except (OSError, ValueError):
        return 0


def attached() -> dict[Path, Path]:
    """Every attached loop device on this machine -> its backing file as sysfs names it."""
    out: dict[Path, Path] = {}
    for entry in sorted(SYS_BLOCK.glob("loop*")):
        try:
            text = (entry / "loop" / "backing_file").read_text().rstrip("\n")
        except OSError:
            continue  # not attached: sysfs has no loop/ directory for a free device
        out[Path("/dev") / entry.name] = Path(text)
    return out


def _inode_of(device: Path) -> int | None:
    """lo_inode from LOOP_GET_STATUS64: the backing file's inode number, to confirm a path match."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_INFO64.size))
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(_INFO64.unpack(raw)[1])


def find(backing: Path) -> list[Path]:
    """Loop devices attached to this file (same path and inode), lowest number first."""
    target = os.path.realpath(backing)
    try:
        ino = os.stat(target).st_ino
    except OSError:
        return []
    found = [dev for dev, path in attached().items() if str(path) == target and _inode_of(dev) == ino]
    return sorted(found, key=lambda d: int(d.name[4:]) if d.name[4:].isdigit() else 1 << 30)


def _device_node(number: int) -> Path:
    """/dev/loopN; created with mknod when /dev is not a devtmpfs (some containers) and the node is missing."""
    path = Path(f"/dev/loop{number}")
    if not path.exists():
        major, minor = (int(x) for x in (SYS_BLOCK / f"loop{number}" / "dev").read_text().split(":"))
        os.mknod(path, stat.S_IFBLK | 0o660, os.makedev(major, minor))
    return path


def _info(backing: Path, flags: int) -> bytes:
    name = str(backing).encode()[:LO_NAME_SIZE - 1]
    return _INFO64.pack(0, 0, 0, 0, 0, 0, 0, 0, flags, name, b"", b"", 0, 0)


def _configure(dev_fd: int, file_fd: int, backing: Path, flags: int) -> None:
    # Direct I/O avoids caching every block twice (device and backing file); a backing filesystem that
    # refuses O_DIRECT (tmpfs) answers EINVAL, and buffered I/O is still correct there.
    attempts = [flags, flags & ~LO_FLAGS_DIRECT_IO] if flags & LO_FLAGS_DIRECT_IO else [flags]
    for i, attempt in enumerate(attempts):
        try:
            fcntl.ioctl(dev_fd, LOOP_CONFIGURE, _CONFIG.pack(file_fd, 0, _info(backing, attempt), *([0] * 8)))
            return
        except OSError as e:
            if e.errno == errno.ENOTTY:
                break
            if e.errno == errno.EINVAL and i + 1 < len(attempts):
                continue
            raise
    # Kernels before 5.8 have no LOOP_CONFIGURE: attach, then set the flags (buffered I/O).
    fcntl.ioctl(dev_fd, LOOP_SET_FD, file_fd)
    try:
        fcntl.ioctl(dev_fd, LOOP_SET_STATUS64, _info(backing, flags & ~LO_FLAGS_DIRECT_IO))
    except OSError:
        fcntl.ioctl(dev_fd, LOOP_CLR_FD, 0)
        raise


def attach(backing: Path, *, read_only: bool = False, direct_io: bool = True, autoclear: bool = False) -> Path:
    """Attach backing to a free loop device and return the device path.

    autoclear makes the kernel detach the device when its last user closes it (for a mount that must
    not outlive its mount point); volumes use False so the device stays until detach().
    """
    backing = Path(os.path.realpath(backing))
    flags = (LO_FLAGS_READ_ONLY if read_only else 0) | (LO_FLAGS_AUTOCLEAR if autoclear else 0)
    flags |= LO_FLAGS_DIRECT_IO if direct_io else 0
    try:
        file_fd = os.open(backing, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
    except OSError as e:
        raise StorageError.from_os("cannot open the loop backing file", backing, e) from e
    try:
        ctl = os.open(LOOP_CONTROL, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        os.close(file_fd)
        raise StorageError.from_os("cannot open", LOOP_CONTROL, e) from e
    try:
        for _ in range(_ATTACH_ATTEMPTS):
            try:
                number = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                device = _device_node(number)
                dev_fd = os.open(device, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
            except OSError as e:
                raise StorageError.from_os("cannot get a free loop device for", backing, e) from e
            try:
                _configure(dev_fd, file_fd, backing, flags)
                return device
            except OSError as e:
                if e.errno == errno.EBUSY:
                    continue  # another process configured this device between GET_FREE and us: take the next
                raise StorageError.from_os(f"cannot attach {device} to", backing, e) from e
            finally:
                os.close(dev_fd)
        raise StorageError("no free loop device after repeated races for", backing, errno.EBUSY)
    finally:
        os.close(ctl)
        os.close(file_fd)


def detach(device: Path, expected_backing: Path | None = None) -> bool:
    """Detach a loop device; True if it was attached. With expected_backing, only if it still serves that file
    (the device number may have been reused for another file since it was recorded)."""
    if expected_backing is not None:
        current = backing_file(device)
        if current is None or str(current) != os.path.realpath(expected_backing):
            return False
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StorageError.from_os("cannot open the loop device", device, e) from e
    try:
        fcntl.ioctl(fd, LOOP_CLR_FD, 0)
    except OSError as e:
        if e.errno == errno.ENXIO:
            return False  # already free
        raise StorageError.from_os("cannot detach the loop device", device, e) from e
    finally:
        os.close(fd)
    return True


def refresh_capacity(device: Path) -> None:
    """Make the device take the backing file's new size (after it was grown)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, LOOP_SET_CAPACITY, 0)
        finally:
            os.close(fd)
    except OSError as e:
        raise StorageError.from_os("cannot update the capacity of", device, e) from e


def device_size(fd: int) -> int:
    """Size in bytes of an open block device or file (the end offset)."""
    return os.lseek(fd, 0, os.SEEK_END)
