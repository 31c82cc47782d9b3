"""The rules of the race (DESIGN.md section 4): fees, slippage, caps and rejection reasons.

`execute_orders` is the only code that changes a portfolio. It is pure: same inputs, same outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from shared.domain.model import Order, Portfolio, Position, Rejection, RejectionReason, Side, Trade
from shared.domain.money import ZERO, q, q_down, q_up

BPS = Decimal(10_000)
# No portfolio of this race gets near it, and it keeps every product of a size and a price well inside the
# 28 significant digits Decimal arithmetic (and quantizing to 8 places) works with.
MAX_ORDER_SIZE = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class RaceRules:
    starting_cash: Decimal = Decimal(100_000)
    fee_bps: Decimal = Decimal(10)
    slippage_bps: Decimal = Decimal(5)
    min_notional_usd: Decimal = Decimal(10)
    # Largest share of equity one position may reach through a buy (1 = no cap beyond cash).
    max_position_fraction: Decimal = Decimal(1)
    max_orders_per_decision: int = 10
    # Opt-in: a symbol whose latest candle closed longer than this before the cycle is not traded (None = no
    # limit: only a symbol behind the others is refused, see `MarketSnapshot.stale_prices`).
    max_price_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.starting_cash <= 0:
            raise ValueError("starting cash must be positive")
        if not (ZERO <= self.fee_bps < BPS and ZERO <= self.slippage_bps < BPS):
            raise ValueError("fee and slippage must be between 0 and 10000 bps")
        if self.min_notional_usd < 0:
            raise ValueError("minimum notional cannot be negative")
        if not (ZERO < self.max_position_fraction <= 1):
            raise ValueError("max position fraction must be in (0, 1]")
        if self.max_orders_per_decision < 1:
            raise ValueError("max orders per decision must be at least 1")
        if self.max_price_age is not None and self.max_price_age <= timedelta(0):
            raise ValueError("max price age must be positive (or None: no limit)")

    @property
    def fee_rate(self) -> Decimal:
        return self.fee_bps / BPS

    @property
    def slippage_rate(self) -> Decimal:
        return self.slippage_bps / BPS

    def fill_price(self, side: Side, last_close: Decimal) -> Decimal:
        """Slippage always works against the trader."""
        factor = 1 + self.slippage_rate if side is Side.BUY else 1 - self.slippage_rate
        return q(last_close * factor)

    def max_affordable_notional(self, cash: Decimal) -> Decimal:
        """The largest buy notional whose cost plus fee fits in `cash`."""
        return q_down(cash / (1 + self.fee_rate))


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    portfolio: Portfolio
    trades: tuple[Trade, ...]
    rejections: tuple[Rejection, ...]


def execute_orders(
    portfolio: Portfolio,
    orders: Sequence[Order],
    prices: Mapping[str, Decimal],
    rules: RaceRules,
    *,
    stale: Mapping[str, str] | None = None,
) -> ExecutionResult:
    """Execute what the rules allow, sells before buys, and reject the rest with a reason.

    `prices` is the snapshot's last close per tradable symbol; an order on a symbol in `stale` (symbol -> why,
    `MarketSnapshot.stale_prices`) is rejected as NO_PRICE: a stale close is never traded at. The input
    portfolio is not modified.
    """
    book = portfolio.copy()
    trades: list[Trade] = []
    rejections: list[Rejection] = []
    marks_equity = portfolio.equity(prices)

    accepted = list(orders[: rules.max_orders_per_decision])
    for extra in orders[rules.max_orders_per_decision :]:
        rejections.append(
            Rejection(extra, RejectionReason.TOO_MANY_ORDERS, f"at most {rules.max_orders_per_decision} orders")
        )
    # Stable sort: sells free cash for the buys that follow, whatever order the model wrote them in.
    accepted.sort(key=lambda o: 0 if o.side is Side.SELL else 1)

    for order in accepted:
        try:
            outcome = (
                Rejection(order, RejectionReason.NO_PRICE, stale[order.symbol])
                if stale and order.symbol in stale
                else _execute_one(book, order, prices, rules, marks_equity)
            )
        except ArithmeticError as exc:  # beyond Decimal's precision; raised before the book is changed
            outcome = Rejection(order, RejectionReason.INVALID_SIZE, f"size cannot be priced: {type(exc).__name__}")
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        else:
            trades.append(outcome)
    return ExecutionResult(book, tuple(trades), tuple(rejections))


def _execute_one(
    book: Portfolio, order: Order, prices: Mapping[str, Decimal], rules: RaceRules, equity: Decimal
) -> Trade | Rejection:
    def reject(reason: RejectionReason, detail: str) -> Rejection:
        return Rejection(order, reason, detail)

    last_close = prices.get(order.symbol)
    if last_close is None:
        return reject(RejectionReason.UNKNOWN_SYMBOL, f"{order.symbol!r} is not traded in this race")
    if last_close <= 0:
        return reject(RejectionReason.NO_PRICE, f"no valid price for {order.symbol}")
    size_error = _size_error(order)
    if size_error:
        return reject(RejectionReason.INVALID_SIZE, size_error)

    price = rules.fill_price(order.side, last_close)
    if order.quantity is not None:
        quantity = q_down(order.quantity)
    else:
        assert order.notional_usd is not None
        quantity = q_down(order.notional_usd / price)
    if quantity <= 0:
        return reject(RejectionReason.INVALID_SIZE, "quantity rounds to zero at 8 decimal places")
    notional = q(quantity * price)
    if notional <= 0:
        # A dust order on a cheap asset would otherwise trade for nothing and pay no fee.
        return reject(RejectionReason.INVALID_SIZE, "notional rounds to zero at 8 decimal places")
    if notional < rules.min_notional_usd:
        return reject(RejectionReason.BELOW_MIN_NOTIONAL, f"notional {notional} < minimum {rules.min_notional_usd}")
    fee = q_up(notional * rules.fee_rate)

    if order.side is Side.SELL:
        held = book.positions.get(order.symbol)
        held_qty = held.quantity if held else ZERO
        if quantity > held_qty:
            return reject(RejectionReason.INSUFFICIENT_POSITION, f"sell {quantity} > held {held_qty}")
        assert held is not None
        held.quantity -= quantity
        if held.quantity == 0:
            del book.positions[order.symbol]
        book.cash += notional - fee
    else:
        cost = notional + fee
        if cost > book.cash:
            return reject(RejectionReason.INSUFFICIENT_CASH, f"cost {cost} incl. fee > cash {q(book.cash)}")
        current = book.positions.get(order.symbol)
        current_qty = current.quantity if current else ZERO
        position_value = (current_qty + quantity) * last_close
        cap = equity * rules.max_position_fraction
        if rules.max_position_fraction < 1 and position_value > cap:
            return reject(RejectionReason.POSITION_CAP, f"position {q(position_value)} > cap {q(cap)}")
        if current is None:
            book.positions[order.symbol] = Position(quantity, price)
        else:
            total_qty = current.quantity + quantity
            current.avg_cost = q((current.quantity * current.avg_cost + quantity * price) / total_qty)
            current.quantity = total_qty
        book.cash -= cost

    book.fees_paid += fee
    book.trade_count += 1
    return Trade(order.symbol, order.side, quantity, price, notional, fee)


def _size_error(order: Order) -> str | None:
    has_qty, has_notional = order.quantity is not None, order.notional_usd is not None
    if has_qty == has_notional:
        return "exactly one of quantity or notional_usd is required"
    size = order.quantity if has_qty else order.notional_usd
    assert size is not None
    if not size.is_finite() or size <= 0:
        return f"size must be a positive finite number, got {size}"
    if size > MAX_ORDER_SIZE:
        return f"size {size:.6g} is above the largest order size {MAX_ORDER_SIZE:.0e}"
    return None
