"""From the model's per-asset predictions to orders: buy the most confident risers, sell holdings expected to fall.

Pure arithmetic on floats; sizes are rounded *down* to cents and satoshis, so the race's Decimal rules (fees,
minimum notional, position cap) accept them as sent. The race still checks every order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from ml_service.model import Prediction
from shared.contracts.ml_decisions import AssetSignal, DecisionRequest, OrderOut

CENT = Decimal("0.01")
SATOSHI = Decimal("0.00000001")
MARGIN = 1.01  # stay clear of the minimum notional after rounding
CASH_BUFFER = 0.999  # leave room for the fee's rounding


@dataclass(frozen=True, slots=True)
class Thresholds:
    buy_above: float
    sell_below: float
    max_buys: int


@dataclass(frozen=True, slots=True)
class Plan:
    orders: list[OrderOut]
    signals: list[AssetSignal]
    reasoning: str
    confidence: float


def _down(value: float, quantum: Decimal) -> Decimal:
    return Decimal(repr(value)).quantize(quantum, rounding=ROUND_DOWN)


def plan_orders(request: DecisionRequest, predictions: Mapping[str, Prediction], thresholds: Thresholds) -> Plan:
    rules, portfolio = request.rules, request.portfolio
    fee = rules.fee_bps / 10_000
    prices = {a.symbol: a.candles[-1].close for a in request.assets}
    held = {s: q for s, q in portfolio.positions.items() if q > 0}
    equity = portfolio.cash + sum(q * prices.get(s, 0.0) for s, q in held.items())
    floor = max(rules.min_notional_usd * MARGIN, 1.0)

    orders: list[OrderOut] = []
    actions: dict[str, str] = dict.fromkeys(predictions, "HOLD")
    cash = portfolio.cash
    for symbol in sorted(predictions):
        if symbol in held and predictions[symbol].prob_up < thresholds.sell_below:
            quantity = _down(held[symbol], SATOSHI)
            proceeds = float(quantity) * prices[symbol] * (1 - rules.slippage_bps / 10_000)
            if quantity > 0 and proceeds >= floor:
                orders.append(OrderOut(symbol=symbol, side="SELL", quantity=quantity))
                actions[symbol] = "SELL"
                cash += proceeds * (1 - fee)

    risers = sorted(
        (s for s, p in predictions.items() if p.prob_up > thresholds.buy_above and s not in held),
        key=lambda s: (-predictions[s].prob_up, s),
    )[: thresholds.max_buys]
    if risers:
        share = cash * CASH_BUFFER / len(risers) / (1 + fee)
        for symbol in risers:
            notional = min(share, equity * rules.max_position_fraction)
            if notional >= floor:
                orders.append(OrderOut(symbol=symbol, side="BUY", notional_usd=_down(notional, CENT)))
                actions[symbol] = "BUY"

    signals = [
        AssetSignal(symbol=s, prob_up=round(p.prob_up, 6), expected_return=round(p.expected_return, 8), action=a)
        for s, p, a in ((s, predictions[s], actions[s]) for s in sorted(predictions))
    ]
    confidence = max((abs(2 * p.prob_up - 1) for p in predictions.values()), default=0.0)
    return Plan(orders, signals, _reasoning(signals, thresholds, orders), round(min(confidence, 1.0), 4))


def _reasoning(signals: list[AssetSignal], thresholds: Thresholds, orders: list[OrderOut]) -> str:
    probs = ", ".join(f"{s.symbol} {s.prob_up:.3f}" for s in signals)
    text = f"P(next candle up): {probs}. Buy above {thresholds.buy_above:.3f}, sell holdings below "
    text += f"{thresholds.sell_below:.3f}."
    if not orders:
        return text + " No asset crosses a threshold: hold."
    moves = "; ".join(
        f"{o.side} {o.symbol} " + (f"{o.quantity} units" if o.quantity is not None else f"${o.notional_usd}")
        for o in orders
    )
    return f"{text} Orders: {moves}."
