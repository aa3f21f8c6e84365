"""Amounts as people write them (`12.50`) <-> integer base units, exactly (never floats)."""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"(\d+)(?:\.(\d+))?")
AMOUNT_DIGITS_MAX = 40  # far above any 64-bit amount; stops absurd inputs early


class AmountError(ValueError):
    """Text that is not an amount of this asset. The message says what to write instead."""


def parse_amount(text: str, decimals: int, *, what: str = "AMOUNT") -> int:
    """`"12.50"` with 2 decimals -> 1250. More decimals than the asset has is an error."""
    cleaned = text.strip().replace("_", "")
    match = _AMOUNT.fullmatch(cleaned)
    if match is None or len(cleaned) > AMOUNT_DIGITS_MAX:
        raise AmountError(
            f"{what} {text!r} is not a decimal number like 12.50 (no sign, no exponent)"
        )
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > decimals:
        raise AmountError(
            f"{what} {text!r} has {len(fraction)} decimal places; the asset has {decimals}"
        )
    return int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")


def format_amount(base_units: int, decimals: int) -> str:
    """1250 with 2 decimals -> "12.50"."""
    if decimals == 0:
        return str(base_units)
    sign = "-" if base_units < 0 else ""
    whole, fraction = divmod(abs(base_units), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}"
