"""Shared fixtures: one real embedded cluster per test module, and no loop device left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycdi.cluster.storage import loopdev
from tests.support.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("pycdi")))
    c.start()
    try:
        yield c
    finally:
        c.stop()
        release_loop_devices(c.data_dir)


def release_loop_devices(root: Path) -> None:
    """Detach the loop devices whose backing files live under `root` (a stopped cluster's data dir)."""
    prefix = str(root.resolve()) + "/"
    for device, backing in loopdev.attached().items():
        if str(backing).removesuffix(" (deleted)").startswith(prefix):
            loopdev.detach(device)


@pytest.fixture(scope="session", autouse=True)
def _release_loop_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Block volumes of the clusters these tests start stay attached across restarts, as they should;
    when the session ends, detach those whose backing files live under this session's temporary root."""
    yield
    release_loop_devices(tmp_path_factory.getbasetemp())
