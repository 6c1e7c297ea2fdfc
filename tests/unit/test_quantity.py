"""Kubernetes quantities: parsing, rounding, canonical printing and kube's error messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pycdi.api.quantity import (
    QuantityError,
    canonical_quantity,
    format_quantity,
    parse,
    parse_quantity,
    quantity_bytes,
)

FORMAT_ERR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERR = "unable to parse quantity's suffix"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1", 1),
        ("1Ki", 1024),
        ("1Mi", 2**20),
        ("1Gi", 2**30),
        ("10Gi", 10 * 2**30),
        ("1Ti", 2**40),
        ("1Pi", 2**50),
        ("1Ei", 2**60),
        ("1k", 1000),
        ("1M", 10**6),
        ("1G", 10**9),
        ("1T", 10**12),
        ("1P", 10**15),
        ("1E", 10**18),
        ("100m", Decimal("0.1")),
        ("5n", Decimal("5e-9")),
        ("7u", Decimal("7e-6")),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1e-3", Decimal("0.001")),
        ("1e+3", 1000),
        ("1.5Gi", 1610612736),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("5.", 5),
        ("-1Gi", -(2**30)),
        ("+2k", 2000),
        ("007", 7),
        ("-", 0),
        ("Gi", 0),
        ("0.1n", Decimal("1e-9")),
        ("1.0000000001", Decimal("1.000000001")),
        (10, 10),
        (1.5, Decimal("1.5")),
    ],
)
def test_parse_values(text: str | int | float, value: Decimal | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_ERR),
        ("abc", FORMAT_ERR),
        ("1.2.3", FORMAT_ERR),
        ("1 Gi", FORMAT_ERR),
        ("1Zi", FORMAT_ERR),
        ("1Gi ", FORMAT_ERR),
        ("1ki", SUFFIX_ERR),
        ("1e", SUFFIX_ERR),
        ("1iK", SUFFIX_ERR),
        ("1MM", SUFFIX_ERR),
        ("1e-", SUFFIX_ERR),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as exc:
        parse_quantity(text)
    assert str(exc.value) == message


def test_bool_is_not_a_quantity() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("1.5", "1500m"),
        ("1500m", "1500m"),
        ("0.1m", "100u"),
        ("1000", "1k"),
        ("1000Ki", "1000Ki"),
        ("1024", "1024"),
        ("1e3", "1e3"),
        ("1e4", "10e3"),
        ("12e6", "12e6"),
        ("5G", "5G"),
        ("0", "0"),
        ("0Gi", "0"),
        ("-1Gi", "-1Gi"),
        ("100Mi", "100Mi"),
        ("0.5Ki", "512"),
        ("1.5Ki", "1536"),
        ("0.3Ki", "307200m"),
        ("2048Ki", "2Mi"),
        ("1e-3", "1e-3"),
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    assert canonical_quantity(text) == canonical


def test_format_keeps_family() -> None:
    assert parse("1.5Gi").format == "BinarySI"
    assert parse("1.5G").format == "DecimalSI"
    assert parse("1e9").format == "DecimalExponent"
    assert parse("0.5Ki").format == "BinarySI"


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (1073741824, True, "1Gi"),
        (1500, True, "1500"),
        (2000000, False, "2M"),
        (1000, True, "1k"),
        (1610612736, True, "1536Mi"),
        (0, True, "0"),
        (5 * 2**30, False, "5368709120"),
        (10**9, False, "1G"),
        (1536, False, "1536"),
        (Decimal("0.5"), False, "500m"),
        (-2048, True, "-2Ki"),
    ],
)
def test_format_quantity(value: int | Decimal, binary: bool, text: str) -> None:
    assert format_quantity(value, binary) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Gi", 2**30),
        ("1.5k", 1500),
        ("100m", 1),
        ("1.1", 2),
        ("0", 0),
        ("10G", 10**10),
        ("1e2", 100),
    ],
)
def test_quantity_bytes(text: str, size: int) -> None:
    assert quantity_bytes(text) == size


def test_roundtrip_canonical_is_stable() -> None:
    for text in ("1Gi", "1536Mi", "1500m", "100u", "10e3", "7", "999Ki"):
        assert canonical_quantity(canonical_quantity(text)) == canonical_quantity(text)
        assert parse_quantity(canonical_quantity(text)) == parse_quantity(text)
