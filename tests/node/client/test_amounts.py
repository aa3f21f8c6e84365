"""Amount text <-> base units: exact, strict about decimals, never floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.cli.amounts import AmountError, format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("12.50", 2, 1250),
        ("12.5", 2, 1250),
        ("12", 2, 1200),
        ("0.01", 2, 1),
        ("7", 0, 7),
        ("1_000.25", 2, 100_025),
        ("9223372036854775807", 0, 2**63 - 1),
        ("0.000000000000000001", 18, 1),
    ],
)
def test_parse(text: str, decimals: int, units: int) -> None:
    assert parse_amount(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals", "message"),
    [
        ("12.505", 2, "has 3 decimal places; the asset has 2"),
        ("1.0", 0, "has 1 decimal places; the asset has 0"),
        ("-1", 2, "not a decimal number"),
        ("1e3", 2, "not a decimal number"),
        ("12.", 2, "not a decimal number"),
        (".5", 2, "not a decimal number"),
        ("abc", 2, "not a decimal number"),
        ("", 2, "not a decimal number"),
        ("1" * 50, 2, "not a decimal number"),
    ],
)
def test_parse_refuses(text: str, decimals: int, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_amount(text, decimals)


@given(st.integers(0, 2**63 - 1), st.integers(0, 18))
def test_format_then_parse_round_trips(units: int, decimals: int) -> None:
    assert parse_amount(format_amount(units, decimals), decimals) == units


def test_format() -> None:
    assert format_amount(1250, 2) == "12.50"
    assert format_amount(5, 3) == "0.005"
    assert format_amount(42, 0) == "42"
