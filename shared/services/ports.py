"""Ports: what the services need from the outside world. Adapters implement them; tests use fakes.

Write side: a `UnitOfWork` groups repositories into one transaction (commit explicitly; leaving the
`with` block without a commit rolls back). Read side: `RaceQueries` serves the HTTP API, bounded and indexed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, Self, TypeVar, runtime_checkable

from shared.domain.model import (
    Agent,
    AgentDecision,
    Asset,
    Candle,
    EquitySnapshot,
    Portfolio,
    Rejection,
    Trade,
)
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot


class DuplicateDecisionError(Exception):
    """The (agent, cycle) pair already has a decision: the cycle was run before; nothing was changed."""


# ---------------------------------------------------------------- write side


class AssetRepository(Protocol):
    def list(self, *, active_only: bool = True) -> list[Asset]: ...
    def upsert(self, asset: Asset) -> None: ...


class CandleRepository(Protocol):
    def upsert(self, candles: Sequence[Candle]) -> int:
        """Insert new rows and update changed ones on (symbol, interval, open_time); returns rows written
        (0 when everything was already stored identically)."""
        ...

    def window(self, symbols: Iterable[str], interval: str, *, at: datetime, count: int) -> dict[str, list[Candle]]:
        """The last `count` candles per symbol whose close time is <= `at`, ascending. Never later data."""
        ...

    def latest_open_time(self, symbol: str, interval: str) -> datetime | None: ...
    def latest_open_times(self, symbols: Iterable[str], interval: str) -> dict[str, datetime | None]:
        """`latest_open_time` for each symbol, in one round trip."""
        ...


class AgentRepository(Protocol):
    def list(self, *, active_only: bool = False) -> list[Agent]: ...
    def get(self, agent_id: int) -> Agent | None: ...
    def get_by_name(self, name: str) -> Agent | None: ...
    def add(self, agent: Agent) -> Agent:
        """Store a new agent (its `id` is ignored) and return it with the assigned id."""
        ...

    def set_active(self, agent_id: int, *, active: bool, reason: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class VersionedPortfolio:
    """A stored portfolio with the version it was read at: every write of a portfolio bumps its version, so
    a writer holding this can replace it without reading it again (see `PortfolioRepository.replace`)."""

    portfolio: Portfolio
    version: int


class PortfolioRepository(Protocol):
    def get(self, agent_id: int) -> Portfolio | None: ...
    def get_many(self, agent_ids: Iterable[int]) -> dict[int, Portfolio]:
        """The stored portfolios of these agents (agents without one are absent), in one round trip."""
        ...

    def get_many_versioned(self, agent_ids: Iterable[int]) -> dict[int, VersionedPortfolio]:
        """`get_many` with each portfolio's version."""
        ...

    def save(self, portfolio: Portfolio) -> None:
        """Insert or replace the portfolio's cash, counters and the full set of positions."""
        ...

    def replace(self, stored: VersionedPortfolio, portfolio: Portfolio) -> bool:
        """Write `portfolio` over `stored` if the stored row is still at `stored.version` (optimistic
        concurrency: no read first). False, with nothing written, when another writer changed it since."""
        ...


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """Everything recorded for one agent in one cycle: the audit trail plus what was executed."""

    agent_id: int
    cycle_time: datetime
    snapshot_sha256: str
    decision: AgentDecision
    trades: tuple[Trade, ...]
    rejections: tuple[Rejection, ...]
    data_staleness_seconds: float | None
    decided_at: datetime


class DecisionRepository(Protocol):
    def decided_agent_ids(self, cycle_time: datetime) -> set[int]: ...
    def add(self, record: DecisionRecord) -> None:
        """Store the decision and its trades, and add its tokens and cost to the agent's running LLM usage
        totals (kept with its stored portfolio); raises DuplicateDecisionError, with nothing written, if
        (agent, cycle) exists."""
        ...

    def add_many(self, records: Sequence[DecisionRecord]) -> None:
        """`add` for many decisions (a backtest's chunk of cycles) in as few statements as the dialect allows.
        Raises DuplicateDecisionError if any (agent, cycle) exists: the unit of work must then be rolled back."""
        ...

    def cycle_totals(self, cycle_time: datetime) -> tuple[int, int]:
        """(decisions, trades) stored for the cycle, whichever run wrote them."""
        ...

    def latest_cycle_time(self) -> datetime | None:
        """The latest cycle any agent has a decision for (None before the first)."""
        ...


class EquityRepository(Protocol):
    def latest(self, agent_id: int) -> EquitySnapshot | None: ...
    def latest_many(self, agent_ids: Iterable[int]) -> dict[int, EquitySnapshot]:
        """`latest` for each agent that has a snapshot, in one round trip."""
        ...

    def add(self, snapshot: EquitySnapshot) -> bool:
        """Store the snapshot unless (agent, at) exists; True when a row was written."""
        ...

    def add_many(self, snapshots: Sequence[EquitySnapshot]) -> int:
        """`add` for each snapshot (in as few statements as the dialect allows); returns rows written."""
        ...

    def marking_inputs(self) -> list[tuple[Portfolio, EquitySnapshot | None]]:
        """Every stored portfolio with its agent's latest snapshot (None before the first), by agent id, in
        one round trip: what marking to market needs."""
        ...


@dataclass(frozen=True, slots=True)
class CycleRecord:
    cycle_time: datetime
    snapshot_sha256: str
    agents: int
    decisions: int
    trades: int
    started_at: datetime
    finished_at: datetime


class CycleRepository(Protocol):
    def add(self, record: CycleRecord) -> None:
        """Record a finished cycle; a second record for the same cycle_time replaces the counters (the service
        passes the cycle's totals from `DecisionRepository.cycle_totals`, so a re-run never undercounts)."""
        ...

    def record_counted(
        self, *, cycle_time: datetime, snapshot_sha256: str, agents: int, started_at: datetime, finished_at: datetime
    ) -> None:
        """`add` with the decisions and trades counted from the stored decisions of the cycle (whichever run
        wrote them), in the same statement where the dialect allows."""
        ...

    def add_many(self, records: Sequence[CycleRecord]) -> None:
        """Record new cycles (a backtest's chunk); a cycle already recorded is an error, not a replacement."""
        ...

    def latest_time(self) -> datetime | None: ...


class UnitOfWork(Protocol):
    assets: AssetRepository
    candles: CandleRepository
    agents: AgentRepository
    portfolios: PortfolioRepository
    decisions: DecisionRepository
    equity: EquityRepository
    cycles: CycleRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# ---------------------------------------------------------------- agents and market data


@dataclass(frozen=True, slots=True)
class AgentContext:
    """Everything one agent may see in one cycle: nothing else leaks into a model."""

    agent: Agent
    cycle_time: datetime
    snapshot: MarketSnapshot
    portfolio: Portfolio
    rules: RaceRules


class AgentModelClient(Protocol):
    """Context in, decision out. Implementations must not raise for model misbehaviour: they return
    `AgentDecision.hold(reason)`. The cycle still guards against exceptions and deadlines."""

    async def decide(self, context: AgentContext) -> AgentDecision: ...


class InstantAgentModelClient(AgentModelClient, Protocol):
    """A client that decides synchronously, in microseconds of pure computation (no I/O): the cycle calls
    `decide_now` directly instead of running `decide` as a task under a deadline."""

    def decide_now(self, context: AgentContext) -> AgentDecision: ...


class AgentClientFactory(Protocol):
    def __call__(self, agent: Agent) -> AgentModelClient: ...


class CycleMetrics(Protocol):
    """Where a cycle reports each recorded decision (telemetry); the real one never raises into the cycle."""

    def decision_recorded(self, agent: Agent, decision: AgentDecision, *, trades: int) -> None: ...


class MarketDataProvider(Protocol):
    """A source of closed candles (bundled replay data, or CoinGecko live)."""

    name: str

    def fetch_candles(self, assets: Sequence[Asset], *, start: datetime, end: datetime) -> list[Candle]:
        """Candles for the assets with open_time >= start and close_time <= end (closed ones only)."""
        ...


@dataclass(frozen=True, slots=True)
class CandleFetch:
    """One asset's answer from a provider that can say what it did not use: the candles, each row or bucket
    dropped as (time label, reason), and `problem` when the provider answered but nothing usable came of it
    (the job reports it as an error, health turns degraded)."""

    candles: list[Candle]
    dropped: tuple[tuple[str, str], ...] = ()
    problem: str | None = None


@runtime_checkable
class ReportingMarketDataProvider(MarketDataProvider, Protocol):
    """A provider whose answers can be partly unusable (CoinGecko): ingest asks it for a `CandleFetch`."""

    def fetch_report(self, asset: Asset, *, start: datetime, end: datetime) -> CandleFetch: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---------------------------------------------------------------- read side (HTTP API)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class AgentSummary:
    agent: Agent
    cash: Decimal
    equity: Decimal | None
    equity_at: datetime | None
    return_pct: Decimal | None
    max_drawdown_pct: Decimal | None
    trades: int
    fees_paid: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    # Running LLM usage: tokens as the providers reported them, cost from the configured price table.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    rank: int
    summary: AgentSummary


@dataclass(frozen=True, slots=True)
class EquityPoint:
    at: datetime
    equity: Decimal
    cash: Decimal
    drawdown_pct: Decimal


@dataclass(frozen=True, slots=True)
class TradeRow:
    id: int
    agent_id: int
    cycle_time: datetime
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class DecisionRow:
    id: int
    agent_id: int
    cycle_time: datetime
    status: str
    reasoning: str
    confidence: float | None
    hold_reason: str | None
    orders: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    trades: int
    snapshot_sha256: str
    data_staleness_seconds: float | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: Decimal | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class PriceRow:
    symbol: str
    price: Decimal
    as_of: datetime  # close time of the candle the price comes from


@dataclass(frozen=True)
class RaceStatus:
    """How far the race has got: finished cycles, the first and latest cycle times, when the latest finished,
    and the time of the newest equity mark."""

    cycles: int
    first_cycle: datetime | None
    last_cycle: datetime | None
    last_finished_at: datetime | None
    last_mark_at: datetime | None = None


class RaceQueries(Protocol):
    """Read-only queries behind the HTTP API. Every method is bounded and served by an index."""

    def ping(self) -> None:
        """Raise if the database cannot answer."""
        ...

    def agent_summaries(self, *, starting_cash: Decimal) -> list[AgentSummary]: ...
    def agent_summary(self, agent_id: int, *, starting_cash: Decimal) -> AgentSummary | None: ...
    def equity_series(
        self, agent_id: int, *, start: datetime | None, end: datetime | None, max_points: int
    ) -> list[EquityPoint]: ...
    def trades(self, agent_id: int, *, limit: int, offset: int) -> Page[TradeRow]: ...
    def decisions(self, agent_id: int, *, limit: int, offset: int) -> Page[DecisionRow]: ...
    def latest_prices(self) -> list[PriceRow]: ...
    def candles(
        self, symbol: str, interval: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> list[Candle]: ...
    def known_symbols(self) -> set[str]: ...
    def race_status(self) -> RaceStatus: ...
