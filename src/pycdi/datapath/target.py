"""The import target: disk.img in a Filesystem volume or the raw device of a Block volume, and its usable size."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..api.sizes import usable_space
from .sparse import is_block_device

DISK_IMAGE_NAME = "disk.img"
#: Usable space is rounded down to this, as upstream's GetUsableSpace (DefaultAlignBlockSize).
ALIGN = 1 << 20
DEFAULT_OVERHEAD = 0.06


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def free_space(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


@dataclass(frozen=True)
class Target:
    """Where the import writes: `volume_dir` for Filesystem (disk.img / archive root), `device` for Block."""

    volume_mode: str  # "Filesystem" | "Block"
    volume_dir: str
    device: str
    image_size: int | None = None
    overhead: float = DEFAULT_OVERHEAD

    @property
    def block(self) -> bool:
        return self.volume_mode == "Block"

    @property
    def disk_path(self) -> str:
        return self.device if self.block else os.path.join(self.volume_dir, DISK_IMAGE_NAME)

    def available(self) -> int:
        """Block: the device size. Filesystem: the free space, capped by the requested size."""
        if self.block:
            return device_size(self.device)
        free = free_space(self.volume_dir)
        return min(free, self.image_size) if self.image_size else free

    def usable(self) -> int:
        """What an image may occupy: the whole device, or the available space less the filesystem overhead."""
        return self.available() if self.block else usable_space(self.overhead, self.available())

    def check(self) -> None:
        """The target exists and is what the volume mode says."""
        if self.block:
            if not is_block_device(self.device) and not os.path.isfile(self.device):
                raise FileNotFoundError(f"block volume {self.device} is missing")
        elif not os.path.isdir(self.volume_dir):
            raise FileNotFoundError(f"volume directory {self.volume_dir} is missing")
