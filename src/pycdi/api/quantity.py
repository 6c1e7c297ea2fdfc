"""Kubernetes `resource.Quantity`: parse sizes like `10Gi`, `1.5`, `100m`, `1e3` and print them like kube."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_UP, Context, Decimal, localcontext

# The pattern kube names in its message; the parser below reproduces the hand-written scanner of
# k8s.io/apimachinery/pkg/api/resource, which is slightly more lenient than the regex (e.g. "-" is 0).
QUANTITY_PATTERN = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXP = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_STEP = {exp // 10: suffix for suffix, exp in _BINARY_SUFFIXES.items()}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_NANO = Decimal("1e-9")
# kube caps binary quantities at the int64 maximum.
_MAX_INT64 = Decimal(2**63 - 1)


class QuantityError(ValueError):
    """A string that is not a quantity; the message is kube's."""


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value and the suffix family it was written in (kept for printing)."""

    value: Decimal
    format: str

    def __str__(self) -> str:
        return _canonical(self.value, self.format)


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Split into sign, integer digits, fraction digits and suffix the way kube's scanner does."""
    positive = True
    pos, end = 0, len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isascii() and text[pos].isdigit():
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, or QuantityError."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body.isdigit():
            return 10, int(digits), DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def parse(text: str | int | float) -> Quantity:
    """Parse a quantity keeping its format; numbers from JSON are read as their text, as kube does."""
    if isinstance(text, bool):
        raise QuantityError(ERR_FORMAT)
    if isinstance(text, int):
        text = str(text)
    elif isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(ERR_FORMAT)
        text = repr(text)
    if not isinstance(text, str) or not text:
        raise QuantityError(ERR_FORMAT)
    if text == "0":
        return Quantity(Decimal(0), DECIMAL_SI)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    digits = num + denom
    with localcontext(Context(prec=max(64, len(digits) + 40), Emax=10**9, Emin=-(10**9))):
        amount = Decimal(f"{num}.{denom}" if denom else num)
        if base == 10:
            amount = amount.scaleb(exponent)
        else:
            amount = amount * (Decimal(2) ** exponent)
        # kube rounds anything finer than a nano-unit up (away from zero), so a request never becomes 0.
        exp = amount.as_tuple().exponent
        if isinstance(exp, int) and exp < -9:
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
        if fmt == BINARY_SI and amount > _MAX_INT64:
            amount = _MAX_INT64
        if fmt == BINARY_SI and 0 < amount < 1:
            fmt = DECIMAL_SI
        if not positive:
            amount = -amount
    return Quantity(amount, fmt)


def parse_quantity(text: str | int | float) -> Decimal:
    """The exact value of a quantity (e.g. `1Gi` -> 1073741824, `100m` -> 0.1)."""
    return parse(text).value


def quantity_bytes(text: str | int | float) -> int:
    """A size in whole bytes, rounded up (as kube's `Value()` does)."""
    return math.ceil(parse_quantity(text))


def canonical_quantity(text: str | int | float) -> str:
    """The string kube prints for a quantity (`1.5Gi` -> `1536Mi`, `1.5` -> `1500m`)."""
    return str(parse(text))


def format_quantity(value: int | Decimal, binary: bool = True) -> str:
    """Print a value in kube's canonical form, in the binary (`Gi`) or decimal (`G`) family."""
    return _canonical(Decimal(value), BINARY_SI if binary else DECIMAL_SI)


def _strip_tens(mantissa: int, exponent: int) -> tuple[int, int]:
    while mantissa and mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return mantissa, exponent


def _canonical(value: Decimal, fmt: str) -> str:
    if value == 0:
        return "0"
    if fmt == BINARY_SI:
        # Small or fractional binary values are shown in decimal so that nothing is rounded.
        if -1024 < value < 1024 or value != value.to_integral_value():
            fmt = DECIMAL_SI
        else:
            mantissa = int(value)
            step = 0
            while step < 6 and mantissa % 1024 == 0:
                mantissa //= 1024
                step += 1
            return f"{mantissa}{_BINARY_BY_STEP.get(step, '')}"
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    mantissa = int("".join(map(str, digits)) or "0")
    mantissa, exp = _strip_tens(mantissa, exp)
    # No fractional digits and an exponent that is a multiple of three, as large as possible.
    shift = exp % 3
    mantissa *= 10**shift
    exp -= shift
    text = f"{'-' if sign else ''}{mantissa}"
    if fmt == DECIMAL_SI and exp in _DECIMAL_BY_EXP:
        return text + _DECIMAL_BY_EXP[exp]
    return text if exp == 0 else f"{text}e{exp}"
