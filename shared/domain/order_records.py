"""How an order and a rejection are recorded: JSON with every amount as its exact decimal string (a JSON number
would pass through a binary float). The decision repository stores this shape and a replay compares against
it, so both take it from here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.model import Order, Rejection


def order_record(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": _decimal_text(order.quantity),
        "notional_usd": _decimal_text(order.notional_usd),
    }


def rejection_record(rejection: Rejection) -> dict[str, Any]:
    order = (
        order_record(rejection.order)
        if rejection.order is not None
        else {"symbol": None, "side": None, "quantity": None, "notional_usd": None}
    )
    return order | {"reason": str(rejection.reason), "detail": rejection.detail}


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
