"""Container cgroups: limits parsed from the pod spec, and empty cgroups swept."""

from __future__ import annotations

import os
import uuid

import pytest

from pycdi.cluster.node import cgroups


def test_limits_of_a_container() -> None:
    limits = cgroups.limits_of({"resources": {"limits": {"memory": "96Mi", "cpu": "250m"}}})
    assert limits == cgroups.Limits(memory_bytes=96 << 20, cpu_millicores=250)
    assert cgroups.limits_of({}).empty


def _writable() -> bool:
    parent = cgroups.ROOT / "memory"
    return not (cgroups.ROOT / "cgroup.controllers").is_file() and parent.is_dir() and os.access(parent, os.W_OK)


@pytest.mark.skipif(not _writable(), reason="needs a writable cgroup v1 memory hierarchy")
def test_sweep_removes_empty_container_cgroups_only() -> None:
    name = f"test-{uuid.uuid4()}"
    group = cgroups.ContainerCgroup.create(name, cgroups.Limits(memory_bytes=64 << 20))
    assert group is not None and all(d.is_dir() for d in group.dirs)
    assert (group.dirs[0] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    cgroups.sweep(names={name})  # too young: another agent's container may be about to join it
    assert all(d.is_dir() for d in group.dirs)
    cgroups.sweep(min_age=0, names={name})
    assert not any(d.exists() for d in group.dirs)
