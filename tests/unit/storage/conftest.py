"""Fixtures for the storage tests: the XFS mount, sparse test files, and a guard against leaked loop devices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pycdi.cluster.storage import loopdev
from tests.support.xfs import xfs_mount  # noqa: F401  (a fixture: pytest finds it by name here)


@pytest.fixture(autouse=True)
def no_leaked_loop_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail a test that leaves a loop device attached to a file under this worker's temporary directory."""
    base = str(tmp_path_factory.getbasetemp())
    before = set(loopdev.attached())
    yield
    leaked = {dev: path for dev, path in loopdev.attached().items()
              if dev not in before and str(path).startswith(base)}
    for dev, path in leaked.items():
        loopdev.detach(dev, expected_backing=path)
    assert not leaked, f"loop devices left attached: {leaked}"
