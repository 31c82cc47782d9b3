"""Entities of the race: assets, candles, agents, portfolios, orders, trades, decisions, equity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from shared.domain.money import ZERO, q

INTERVAL_SECONDS: Mapping[str, int] = {"30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
# Built once: close_time is read for every candle of every snapshot, on the hot path of a replay.
_INTERVAL_DELTAS: Mapping[str, timedelta] = {k: timedelta(seconds=v) for k, v in INTERVAL_SECONDS.items()}


def interval_delta(interval: str) -> timedelta:
    """The length of a candle interval such as "1h"; ValueError for an unknown interval."""
    try:
        return _INTERVAL_DELTAS[interval]
    except KeyError:
        raise ValueError(f"unknown candle interval {interval!r}; known: {sorted(INTERVAL_SECONDS)}") from None


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str  # "BTC"
    name: str  # "Bitcoin"
    coingecko_id: str  # "bitcoin": the live provider's id, kept as data so adding an asset is a data change
    active: bool = True


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar. `open_time` is UTC-aware; the candle is final once `close_time` has passed."""

    symbol: str
    interval: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def close_time(self) -> datetime:
        return self.open_time + interval_delta(self.interval)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, slots=True)
class Order:
    """A requested order: exactly one of `quantity` (base units) or `notional_usd` is set."""

    symbol: str
    side: Side
    quantity: Decimal | None = None
    notional_usd: Decimal | None = None


class RejectionReason(StrEnum):
    UNKNOWN_SYMBOL = "unknown_symbol"
    NO_PRICE = "no_price"
    INVALID_SIZE = "invalid_size"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_POSITION = "insufficient_position"
    POSITION_CAP = "position_cap"
    TOO_MANY_ORDERS = "too_many_orders"
    INVALID_ORDER = "invalid_order"  # the model's order is not an order (no side, not an object, ...)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order not executed, and why. `order` is None when what the model wrote could not even be read as
    an order (the parser's rejections: `detail` then says what was there)."""

    order: Order | None
    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class Trade:
    """An executed order at the snapshot's price after slippage; `fee` is always charged in USD."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal


@dataclass(slots=True)
class Position:
    quantity: Decimal
    avg_cost: Decimal


@dataclass(slots=True)
class Portfolio:
    """Cash plus long positions. Mutated only by `shared.domain.rules.execute_orders`."""

    agent_id: int
    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    fees_paid: Decimal = ZERO
    trade_count: int = 0

    def equity(self, prices: Mapping[str, Decimal]) -> Decimal:
        """Cash + sum(quantity x price). A position without a price is marked at its average cost."""
        total = self.cash
        for symbol, position in self.positions.items():
            total += position.quantity * prices.get(symbol, position.avg_cost)
        return q(total)

    def copy(self) -> Portfolio:
        return Portfolio(
            agent_id=self.agent_id,
            cash=self.cash,
            positions={s: Position(p.quantity, p.avg_cost) for s, p in self.positions.items()},
            fees_paid=self.fees_paid,
            trade_count=self.trade_count,
        )


class AgentProvider(StrEnum):
    BASELINE = "baseline"
    LLAMA = "llama"
    OPENAI = "openai"
    AZURE_OPENAI = "azure_openai"
    CUSTOM_ML = "custom_ml"


@dataclass(frozen=True, slots=True)
class Agent:
    """A racer. `model` names the strategy for baselines and the model id for LLM/ML providers."""

    id: int
    name: str
    provider: str
    model: str
    strategy: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True
    inactive_reason: str | None = None


class DecisionStatus(StrEnum):
    OK = "ok"  # the model answered and its orders were processed (some may have been rejected)
    HOLD_FALLBACK = "hold_fallback"  # the model failed in some way; recorded as HOLD with `hold_reason`


@dataclass(frozen=True, slots=True)
class AgentDecision:
    """What a model client returns: orders plus the audit trail of how they were obtained."""

    orders: tuple[Order, ...]
    reasoning: str
    confidence: float | None = None
    hold_reason: str | None = None  # set when this is a fallback HOLD (timeout, invalid output, ...)
    prompt: str | None = None
    raw_response: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    # Orders the model asked for that were refused before execution (the LLM parser's rejections): recorded
    # with the decision's other rejections and counted with them.
    rejections: tuple[Rejection, ...] = ()
    # The context it was made in (set by the cycle, stored for replay): not part of what the model answered,
    # so two equal answers compare equal whatever they were asked with. A shared.domain.decision_inputs
    # .DecisionInputs or None; typed Any because that module builds on this one (no import circle, not even
    # a type-only one: tests/unit/test_package_layout.py).
    inputs: Any = field(default=None, compare=False)

    @classmethod
    def hold(cls, reason: str, **audit: Any) -> AgentDecision:
        return cls(orders=(), reasoning=f"HOLD: {reason}", hold_reason=reason, **audit)


@dataclass(frozen=True, slots=True)
class EquitySnapshot:
    """A portfolio marked to market. Peak and max drawdown are running values up to `at`, kept on the
    row so the leaderboard reads one row per agent instead of scanning a year of history. `ordinal` numbers an
    agent's snapshots 1, 2, 3, ... in time order: a curve thinned to every k-th point picks rows by number
    instead of numbering a year of rows on every request."""

    agent_id: int
    at: datetime
    equity: Decimal
    cash: Decimal
    peak_equity: Decimal
    max_drawdown: Decimal  # fraction of peak, 0..1
    ordinal: int = 1

    def next(self, *, at: datetime, equity: Decimal, cash: Decimal) -> EquitySnapshot:
        return EquitySnapshot.first(self.agent_id, at=at, equity=equity, cash=cash, previous=self)

    @staticmethod
    def first(
        agent_id: int, *, at: datetime, equity: Decimal, cash: Decimal, previous: EquitySnapshot | None = None
    ) -> EquitySnapshot:
        peak = max(equity, previous.peak_equity) if previous else equity
        drawdown = (peak - equity) / peak if peak > 0 else ZERO
        worst = max(drawdown, previous.max_drawdown) if previous else drawdown
        ordinal = previous.ordinal + 1 if previous else 1
        return EquitySnapshot(agent_id, at, equity, cash, peak, worst.quantize(Decimal("0.00000001")), ordinal)
