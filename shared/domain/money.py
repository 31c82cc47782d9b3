"""Exact decimal arithmetic for prices, quantities and cash.

Everything is kept to 8 decimal places (satoshi precision), the same scale the database stores as scaled
integers, so a value read back is identical to the value written.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

SCALE = 8
QUANTUM = Decimal(1).scaleb(-SCALE)  # 0.00000001
ZERO = Decimal(0)


def q(value: Decimal) -> Decimal:
    """Round to the storage scale (banker's rounding): used for prices and marks."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def q_down(value: Decimal) -> Decimal:
    """Round toward zero: quantities bought or sold never exceed what was affordable or held."""
    return value.quantize(QUANTUM, rounding=ROUND_DOWN)


def q_up(value: Decimal) -> Decimal:
    """Round away from zero: fees are never rounded in the trader's favour."""
    return value.quantize(QUANTUM, rounding=ROUND_UP)


def to_decimal(value: object) -> Decimal:
    """Parse a number from text/int/Decimal without passing through binary floats where avoidable.

    Raises ValueError for anything that is not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result
