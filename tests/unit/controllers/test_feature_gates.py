"""CDIConfig feature gates as the controllers read them, and the import controller's WaitForFirstConsumer rule."""

from __future__ import annotations

from typing import Any

from pycdi.api.constants import FeatureGate
from pycdi.controllers.cdiconfig.featuregates import DEFAULT_GATES, enabled_gates, gate_enabled
from pycdi.controllers.importpod.controller import should_handle

HONOR = FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER
ADOPTION = FeatureGate.DATA_VOLUME_CLAIM_ADOPTION


def config(gates: list[str] | None) -> dict[str, Any]:
    return {"spec": {} if gates is None else {"featureGates": gates}}


def pvc(phase: str, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "annotations": annotations}, "status": {"phase": phase}}


def test_an_absent_list_is_the_installed_default() -> None:
    assert enabled_gates(None) == enabled_gates(config(None)) == DEFAULT_GATES
    assert gate_enabled(config(None), HONOR) and not gate_enabled(config(None), ADOPTION)


def test_a_listed_set_is_taken_as_written() -> None:
    assert not gate_enabled(config([]), HONOR)
    assert gate_enabled(config([ADOPTION.value]), ADOPTION) and not gate_enabled(config([ADOPTION.value]), HONOR)
    assert gate_enabled(config([HONOR.value, ADOPTION.value]), HONOR)


def test_import_waits_for_binding_only_while_the_gate_is_on() -> None:
    immediate = {"cdi.kubevirt.io/storage.bind.immediate.requested": ""}
    assert should_handle(pvc("Bound"), config(None))
    assert not should_handle(pvc("Pending"), config(None))
    assert should_handle(pvc("Pending", **immediate), config(None))
    assert should_handle(pvc("Pending"), config([]))  # gate off: the importer pod is the first consumer
    assert not should_handle(pvc("Pending"), config([HONOR.value]))
