"""The wire contract of ml_service's `POST /v1/decisions`: one request/response schema for both sides.

The `custom_ml` agent (shared/adapters/agents/custom_ml.py) builds a `DecisionRequest` and parses a
`DecisionResponse`; the service (ml_service/) validates the same `DecisionRequest` and returns the same
`DecisionResponse`. Prices are JSON numbers (the model works in float); order sizes come back as decimal strings,
already rounded down, so the race's Decimal rules apply to them unchanged.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

CONTRACT_VERSION = "1"
DECISIONS_PATH = "/v1/decisions"
LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
METRICS_PATH = "/metrics"

API_KEY_HEADER = "X-API-Key"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# Set (to "true") on a response replayed from the idempotency store; the body is the stored bytes, unchanged.
IDEMPOTENT_REPLAY_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:+\-]{8,200}$")
MAX_ASSETS = 50
MAX_CANDLES_PER_ASSET = 1000
SYMBOL_PATTERN = r"^[A-Z0-9]{1,15}$"
INTERVALS = ("30m", "1h", "4h", "1d")


def decision_idempotency_key(agent_id: int, cycle_time: datetime) -> str:
    """The key for one agent's decision in one cycle: every retry of that decision, from any caller, sends it."""
    at = cycle_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"agent-{agent_id}.cycle-{at}"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a timezone (UTC), e.g. 2024-03-01T12:00:00Z")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class CandleIn(_Wire):
    """One closed OHLCV bar; `open_time` is its start (UTC)."""

    open_time: UtcDatetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.high < max(self.open, self.close, self.low) or self.low > min(self.open, self.close):
            raise ValueError("inconsistent candle: need low <= open, close <= high")
        return self


class AssetCandles(_Wire):
    symbol: Annotated[str, Field(pattern=SYMBOL_PATTERN, description="upper-case ticker, e.g. BTC")]
    candles: Annotated[list[CandleIn], Field(min_length=1, max_length=MAX_CANDLES_PER_ASSET)]

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        times = [c.open_time for c in self.candles]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError(f"{self.symbol}: candles must be strictly ascending by open_time, without duplicates")
        return self


class PortfolioIn(_Wire):
    cash: NonNegative
    positions: Annotated[dict[str, NonNegative], Field(default_factory=dict, max_length=MAX_ASSETS)]


class RulesIn(_Wire):
    """The race rules the orders must respect (the race enforces them again; these keep the orders sensible)."""

    fee_bps: Annotated[float, Field(ge=0, lt=10_000)] = 10
    slippage_bps: Annotated[float, Field(ge=0, lt=10_000)] = 5
    min_notional_usd: NonNegative = 10
    max_position_fraction: Annotated[float, Field(gt=0, le=1)] = 1


class DecisionRequest(_Wire):
    """Agent context in: the snapshot's candles per asset (oldest first), the portfolio and the rules."""

    agent_id: int
    cycle_time: UtcDatetime
    interval: Literal["30m", "1h", "4h", "1d"] = "1h"
    assets: Annotated[list[AssetCandles], Field(min_length=1, max_length=MAX_ASSETS)]
    portfolio: PortfolioIn
    rules: RulesIn = Field(default_factory=RulesIn)

    @model_validator(mode="after")
    def _unique_symbols_and_no_look_ahead(self) -> Self:
        symbols = [a.symbol for a in self.assets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"duplicate symbols in assets: {sorted({s for s in symbols if symbols.count(s) > 1})}")
        for asset in self.assets:
            if asset.candles[-1].open_time >= self.cycle_time:
                raise ValueError(f"{asset.symbol}: a candle opens at or after cycle_time (look-ahead)")
        return self


# The upper bound is the race's largest order size (shared.domain.rules.MAX_ORDER_SIZE).
DecimalString = Annotated[Decimal, Field(gt=0, le=Decimal(10) ** 12, allow_inf_nan=False)]


class OrderOut(_Wire):
    """BUY or SELL with exactly one of `quantity` (base units) or `notional_usd`, as in DESIGN.md section 5."""

    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: DecimalString | None = None
    notional_usd: DecimalString | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if (self.quantity is None) == (self.notional_usd is None):
            raise ValueError("an order has exactly one of quantity or notional_usd")
        return self


class AssetSignal(_Wire):
    """What the model thinks of one asset: probability that the next candle closes up, expected log return."""

    symbol: str
    prob_up: Annotated[float, Field(ge=0, le=1)]
    expected_return: float
    action: Literal["BUY", "SELL", "HOLD"]


class DecisionResponse(_Wire):
    orders: list[OrderOut]
    reasoning: str
    confidence: Annotated[float, Field(ge=0, le=1)]
    model_version: str
    signals: list[AssetSignal]
    contract_version: str = CONTRACT_VERSION


class ErrorDetail(_Wire):
    code: str
    message: str


class ErrorBody(_Wire):
    """Every 4xx/5xx of the service: `{"error": {"code": ..., "message": ...}}` (the race API's shape)."""

    error: ErrorDetail
