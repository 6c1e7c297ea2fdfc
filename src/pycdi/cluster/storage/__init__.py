"""Storage on this machine: volumes (directories, sparse files, loop devices) and the copy engine that clones them."""

from __future__ import annotations

from pycdi.cluster.storage.blockcopy import copy_block
from pycdi.cluster.storage.copy import CopyResult, copy_file, copy_tree
from pycdi.cluster.storage.errors import StorageError
from pycdi.cluster.storage.fsinfo import allocated_bytes, filesystem_type, supports_reflink
from pycdi.cluster.storage.volumes import (
    BlockDevice,
    attach_block_volume,
    create_block_volume,
    create_directory_volume,
    delete_volume,
    detach_block_volume,
    loop_devices_available,
    resize_block_volume,
)

__all__ = [
    "BlockDevice", "CopyResult", "StorageError", "allocated_bytes", "attach_block_volume", "copy_block",
    "copy_file", "copy_tree", "create_block_volume", "create_directory_volume", "delete_volume",
    "detach_block_volume", "filesystem_type", "loop_devices_available", "resize_block_volume",
    "supports_reflink",
]
