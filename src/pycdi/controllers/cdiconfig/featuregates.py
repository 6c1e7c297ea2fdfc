"""CDIConfig feature gates as the controllers read them: the listed ones, or upstream's installed default."""

from __future__ import annotations

from typing import Any

from ...api.constants import FeatureGate

#: What an installation starts with when CDIConfig lists no gates: upstream's operator creates the CDI resource
#: with `featureGates: [HonorWaitForFirstConsumer]`, and we have no CDI resource, so an absent list means that.
#: A list that is present, even empty, is taken as written (upstream: a gate not listed is off).
DEFAULT_GATES: tuple[str, ...] = (FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER.value,)


def enabled_gates(config: dict[str, Any] | None) -> tuple[str, ...]:
    listed = ((config or {}).get("spec") or {}).get("featureGates")
    return DEFAULT_GATES if listed is None else tuple(str(g) for g in listed)


def gate_enabled(config: dict[str, Any] | None, gate: FeatureGate) -> bool:
    return gate.value in enabled_gates(config)
