"""Volume sizes with filesystem overhead, as upstream CDI computes them (GetRequiredSpace / GetUsableSpace).

One formula for both directions, so that a claim sized with `required_space(o, n)` holds an image of
`usable_space(o, claim) == n` bytes (upstream #3779 made the two exact inverses).
"""

from __future__ import annotations

import math

MIB = 1 << 20


def required_space(overhead: float, wanted: int) -> int:
    """The claim size for `wanted` bytes of image: aligned up to 1 MiB, plus the overhead, ceiled."""
    aligned = -(-wanted // MIB) * MIB
    return int(math.ceil(aligned * (1.0 + overhead)))


def usable_space(overhead: float, available: int) -> int:
    """The bytes an image may take on a Filesystem volume of `available` bytes: overhead removed, 1 MiB aligned."""
    return int(math.ceil(available / (1.0 + overhead))) // MIB * MIB
