"""Claim sizes and usable space with filesystem overhead: exact inverses, as upstream CDI computes them."""

from __future__ import annotations

import pytest

from pycdi.api.sizes import MIB, required_space, usable_space

GI = 1 << 30


@pytest.mark.parametrize("overhead", [0.0, 0.055, 0.06, 0.1, 0.5])
@pytest.mark.parametrize("wanted", [MIB, 100 * MIB, GI, 10 * GI, 3 * GI + 5 * MIB])
def test_a_claim_sized_for_an_image_holds_exactly_that_image(overhead: float, wanted: int) -> None:
    assert usable_space(overhead, required_space(overhead, wanted)) == wanted


def test_known_values() -> None:
    assert required_space(0.06, GI) == 1138166334  # what a 1Gi Filesystem DataVolume asks its claim for
    assert usable_space(0.06, 100 * MIB) == 94 * MIB
    assert required_space(0.06, GI + 1) == required_space(0.06, GI + MIB)  # aligned up to 1 MiB first
