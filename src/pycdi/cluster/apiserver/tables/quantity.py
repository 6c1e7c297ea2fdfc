"""Resource quantities in their canonical form, as `resource.Quantity.String()` prints them."""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$")


def _decimal_string(value: Fraction, exponent_form: bool) -> str:
    """Largest exponent (a multiple of 3) that keeps the mantissa whole, as kube canonicalises."""
    if value == 0:
        return "0"
    exp = -9
    # Quantities carry at most nano precision; anything finer rounds up (away from zero) as kube does.
    scaled = value * 10**9
    mantissa = int(scaled) if scaled.denominator == 1 else int(scaled) + (1 if scaled > 0 else -1)
    while mantissa % 1000 == 0 and exp < 18:
        mantissa //= 1000
        exp += 3
    if exponent_form:
        return f"{mantissa}" if exp == 0 else f"{mantissa}e{exp}"
    return f"{mantissa}{_DECIMAL_SUFFIX[exp]}"


def canonical(quantity: object) -> str:
    """`1024Mi` -> `1Gi`, `0.5Gi` -> `512Mi`, `1000M` -> `1G`; unparsable input is returned as is."""
    if isinstance(quantity, bool):
        return str(quantity)
    if isinstance(quantity, int):
        return _decimal_string(Fraction(quantity), False)
    if not isinstance(quantity, str):
        return "" if quantity is None else str(quantity)
    m = _QUANTITY.match(quantity.strip())
    if m is None:
        return quantity
    number = Fraction(m.group(1))
    suffix, exponent = m.group(2), m.group(3)
    if suffix in _BINARY:
        value = number * 1024 ** _BINARY[suffix]
        # Small or fractional byte counts print in decimal form, to avoid rounding surprises.
        if value.denominator != 1 or -1024 < value < 1024:
            return _decimal_string(value, False)
        whole = int(value)
        power = 0
        while power < 6 and whole % 1024 == 0 and whole != 0:
            whole //= 1024
            power += 1
        return f"{whole}{_BINARY_SUFFIX.get(power, '')}"
    if exponent is not None:
        return _decimal_string(number * Fraction(10) ** int(exponent), True)
    return _decimal_string(number * Fraction(10) ** _DECIMAL[suffix or ""], False)
