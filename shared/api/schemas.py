"""Response models of the HTTP API (`...Public`: what the dashboard may see).

Money, prices, quantities and percentages are exact decimals and travel as JSON *strings*
(`"100000.00000000"`), never as binary floats, so the dashboard shows what the ledger holds. Times are
ISO 8601 in UTC (`2024-01-02T00:00:00Z`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shared.api.headline_schemas import ExcessReturnPublic, StatisticsStatusPublic
from shared.domain.model import Agent, Candle
from shared.services.ports import (
    AgentSummary,
    DecisionRow,
    LeaderboardRow,
    PriceRow,
    TradeRow,
)
from shared.services.race_statistics import Headline


def _plain_decimal_text(value: Decimal) -> str:
    # format(..., "f") never switches to exponent notation ("1E+2"), which some JSON clients misparse.
    return format(value, "f")


Money = Annotated[
    Decimal,
    PlainSerializer(_plain_decimal_text, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "decimal",
            "pattern": r"^-?\d+(\.\d+)?$",
            "description": "An exact decimal number, sent as a string to keep every digit.",
            "examples": ["100000.00000000"],
        }
    ),
]


# An unencoded "+00:00" in a query string arrives as " 00:00" (form decoding turns "+" into a space).
_LOST_PLUS_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


# ISO 8601 only: pydantic would also read "0.5" or 1700000000 as seconds since 1970.
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _restore_lost_plus(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_START.match(value.strip()):
        raise ValueError("an ISO 8601 time is required, e.g. 2024-01-02T00:00:00Z")
    return _LOST_PLUS_OFFSET.sub(r"+\1", value.strip())


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timezone is required (race times are UTC), e.g. 2024-01-02T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("the time is out of range once converted to UTC") from None


UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_restore_lost_plus),
    AfterValidator(_require_timezone),
]
"""An ISO 8601 time with an explicit offset, normalised to UTC; naive times are rejected, not guessed."""


class _Public(BaseModel):
    # from_attributes: the read-side rows and domain objects map onto these by field name, so each schema
    # states its public fields once instead of copying them one by one.
    model_config = ConfigDict(frozen=True, from_attributes=True)


# ---------------------------------------------------------------- agents and leaderboard


class AgentPublic(_Public):
    id: int
    name: str
    provider: str
    model: str
    strategy: str
    active: bool
    inactive_reason: str | None
    cash: Money
    equity: Money | None
    equity_at: datetime | None
    return_pct: Money | None
    max_drawdown_pct: Money | None
    trades: int
    fees_paid: Money
    positions: dict[str, Money]
    prompt_tokens: int = Field(
        description="LLM prompt tokens used so far, as the provider reported them (0 for non-LLM agents)."
    )
    completion_tokens: int = Field(description="LLM completion tokens used so far.")
    llm_cost_usd: Money = Field(description="Estimated LLM cost so far in USD, from the configured price table.")

    @classmethod
    def from_summary(cls, summary: AgentSummary) -> AgentPublic:
        agent: Agent = summary.agent
        # `agent.params` stays private: it is strategy configuration, not something the dashboard needs.
        return cls(
            id=agent.id,
            name=agent.name,
            provider=agent.provider,
            model=agent.model,
            strategy=agent.strategy,
            active=agent.active,
            inactive_reason=agent.inactive_reason,
            cash=summary.cash,
            equity=summary.equity,
            equity_at=summary.equity_at,
            return_pct=summary.return_pct,
            max_drawdown_pct=summary.max_drawdown_pct,
            trades=summary.trades,
            fees_paid=summary.fees_paid,
            positions=dict(summary.positions),
            prompt_tokens=summary.prompt_tokens,
            completion_tokens=summary.completion_tokens,
            llm_cost_usd=summary.llm_cost_usd,
        )


class AgentsPublic(_Public):
    items: list[AgentPublic]
    total: int


class LeaderboardEntryPublic(_Public):
    rank: int
    agent_id: int
    name: str
    provider: str
    model: str
    active: bool
    equity: Money | None
    equity_at: datetime | None
    return_pct: Money | None
    max_drawdown_pct: Money | None
    trades: int
    fees_paid: Money
    prompt_tokens: int = Field(description="LLM prompt tokens used so far (0 for non-LLM agents).")
    completion_tokens: int = Field(description="LLM completion tokens used so far.")
    llm_cost_usd: Money = Field(description="Estimated LLM cost so far in USD.")
    sharpe: float | None = Field(
        None,
        description="Annualised Sharpe ratio: mean / sample std of per-cycle returns x sqrt(cycles per year), "
        "risk-free 0. Null with fewer than 2 returns or no statistics yet.",
    )
    max_drawdown: float | None = Field(
        None, description="Largest fall of equity from a running peak, as a fraction of the peak (0.1 = 10%)."
    )
    win_rate: float | None = Field(
        None, description="Share of closed round trips (FIFO lots, fees included) with positive P&L (0..1)."
    )
    net_return: float | None = Field(
        None,
        description="Total return after the inference (LLM) cost recorded with its decisions: (last equity - "
        "cost) / first equity - 1, as a fraction. Not annualised.",
    )
    excess_over_buy_and_hold: ExcessReturnPublic | None = Field(
        None, description="Excess return over the buy-and-hold BTC control, with its 95% interval and flag."
    )

    @classmethod
    def from_row(cls, row: LeaderboardRow, headline: Headline | None = None) -> LeaderboardEntryPublic:
        summary, agent = row.summary, row.summary.agent
        figures: dict[str, Any] = {}
        if headline is not None:
            excess = headline.excess_over_buy_and_hold
            figures = {
                "sharpe": headline.sharpe,
                "max_drawdown": headline.max_drawdown,
                "win_rate": headline.win_rate,
                "net_return": headline.net_return,
                "excess_over_buy_and_hold": ExcessReturnPublic.from_comparison(excess) if excess else None,
            }
        return cls(
            rank=row.rank,
            agent_id=agent.id,
            name=agent.name,
            provider=agent.provider,
            model=agent.model,
            active=agent.active,
            equity=summary.equity,
            equity_at=summary.equity_at,
            return_pct=summary.return_pct,
            max_drawdown_pct=summary.max_drawdown_pct,
            trades=summary.trades,
            fees_paid=summary.fees_paid,
            prompt_tokens=summary.prompt_tokens,
            completion_tokens=summary.completion_tokens,
            llm_cost_usd=summary.llm_cost_usd,
            **figures,
        )


class LeaderboardPublic(_Public):
    starting_cash: Money
    items: list[LeaderboardEntryPublic]
    statistics: StatisticsStatusPublic | None = Field(
        None, description="Which computed statistics the headline figures come from, or why they are missing."
    )


class RacePublic(_Public):
    """How far the race has got, and `version`: it changes exactly when a cycle lands (cheap to poll)."""

    cycles: int = Field(description="Cycles finished so far.")
    first_cycle: datetime | None
    last_cycle: datetime | None
    last_finished_at: datetime | None = Field(description="Wall-clock time the latest cycle finished.")
    version: str = Field(
        description="Opaque; changes when a cycle lands or is recorded again, and when its statistics land."
    )


# ---------------------------------------------------------------- per-agent history


class EquityPointPublic(_Public):
    at: datetime
    equity: Money
    cash: Money
    drawdown_pct: Money


class EquitySeriesPublic(_Public):
    agent_id: int
    start: datetime | None
    end: datetime | None
    max_points: int
    points: list[EquityPointPublic]


class EquityCurvePublic(_Public):
    """One agent's account value over time, as columns: `at[i]` is when it was worth `equity[i]`."""

    agent_id: int
    at: list[datetime]
    equity: list[Money]


class EquityCurvesPublic(_Public):
    """Every agent's curve, by agent id (`GET /api/equity`): only what an all-agents chart draws, in columns
    (a year of 20 agents is under half the bytes of their 20 `/agents/{id}/equity` documents)."""

    start: datetime | None
    end: datetime | None
    max_points: int
    curves: list[EquityCurvePublic]


class TradePublic(_Public):
    id: int
    agent_id: int
    cycle_time: datetime
    symbol: str
    side: str
    quantity: Money
    price: Money
    notional: Money
    fee: Money

    @classmethod
    def from_row(cls, row: TradeRow) -> TradePublic:
        return cls.model_validate(row)


class DecisionPublic(_Public):
    id: int
    agent_id: int
    cycle_time: datetime
    status: str
    reasoning: str
    confidence: float | None
    hold_reason: str | None = Field(description="Why the agent held, in our words (the raw text is not public).")
    hold_code: str | None = Field(None, description="A stable code of the hold reason, e.g. `rate_limited`.")
    orders: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    trades: int
    snapshot_sha256: str
    data_staleness_seconds: float | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: Money | None
    decided_at: datetime

    @classmethod
    def from_row(cls, row: DecisionRow) -> DecisionPublic:
        from shared.api.redaction import classify_hold, public_reasoning

        public = cls.model_validate(row)
        if row.hold_reason is None:
            return public
        hold = classify_hold(row.hold_reason)
        update = {
            "hold_reason": hold.message,
            "hold_code": hold.code,
            "reasoning": public_reasoning(row.reasoning, hold),
        }
        return public.model_copy(update=update)


class TradesPagePublic(_Public):
    items: list[TradePublic]
    total: int
    limit: int
    offset: int


class DecisionsPagePublic(_Public):
    items: list[DecisionPublic]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- market


class PricePublic(_Public):
    symbol: str
    price: Money
    as_of: datetime

    @classmethod
    def from_row(cls, row: PriceRow) -> PricePublic:
        return cls.model_validate(row)


class PricesPublic(_Public):
    items: list[PricePublic]


class CandlePublic(_Public):
    open_time: datetime
    close_time: datetime
    open: Money
    high: Money
    low: Money
    close: Money
    volume: Money

    @classmethod
    def from_candle(cls, candle: Candle) -> CandlePublic:
        return cls.model_validate(candle)


class CandlesPublic(_Public):
    symbol: str
    interval: str
    items: list[CandlePublic]


# ---------------------------------------------------------------- health and admin


HealthStatus = Literal["ok", "degraded", "unavailable"]


class HealthPublic(_Public):
    """`status`: ok; degraded (a non-critical dependency is down: data is still served); unavailable (503:
    the configuration or the database is). `checks` has one status per dependency (`database`,
    `market_data`, `llm:<provider>:<model>`, `ml_client`, `ml_service`, and in the local race `race`: its
    cycle process); `details` says why, without secrets."""

    status: HealthStatus
    checks: dict[str, HealthStatus]
    details: dict[str, str] = {}


class JobRequest(BaseModel):
    """Optional body of the admin job triggers."""

    model_config = ConfigDict(extra="forbid")

    at: UtcDatetime | None = None


class JobReportPublic(_Public):
    job: str
    at: datetime
    cycle_time: datetime | None = None
    report: Mapping[str, Any]


# ---------------------------------------------------------------- errors (documentation of errors.py's bodies)


class ErrorDetailPublic(_Public):
    location: str
    message: str


class ErrorBodyPublic(_Public):
    code: str
    message: str
    details: list[ErrorDetailPublic] | None = None


class ErrorPublic(_Public):
    """Every non-2xx response: `{"error": {"code": "not_found", "message": "agent 7 not found"}}`."""

    error: ErrorBodyPublic
