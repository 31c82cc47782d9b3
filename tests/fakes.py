"""In-memory fakes of every port (DESIGN.md section 9): unit tests run the real services against these.

`FakeUnitOfWorkFactory` owns the committed state; each unit of work works on a private copy and only
`commit()` publishes it, so leaving a `with` block without committing really discards the changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Self

from shared.domain.model import (
    Agent,
    AgentDecision,
    Asset,
    Candle,
    EquitySnapshot,
    Order,
    Portfolio,
    interval_delta,
)
from shared.services.ports import (
    AgentContext,
    AgentModelClient,
    CycleRecord,
    DecisionRecord,
    DuplicateDecisionError,
    VersionedPortfolio,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass
class FakeState:
    """Everything the fake database holds. Candles and snapshots are immutable, so sharing them is safe."""

    assets: dict[str, Asset] = field(default_factory=dict)
    candles: dict[tuple[str, str], dict[datetime, Candle]] = field(default_factory=dict)
    agents: dict[int, Agent] = field(default_factory=dict)
    portfolios: dict[int, Portfolio] = field(default_factory=dict)
    portfolio_versions: dict[int, int] = field(default_factory=dict)
    decisions: dict[tuple[int, datetime], DecisionRecord] = field(default_factory=dict)
    equity: dict[int, list[EquitySnapshot]] = field(default_factory=dict)
    cycles: dict[datetime, CycleRecord] = field(default_factory=dict)
    next_agent_id: int = 1

    def copy(self) -> FakeState:
        return FakeState(
            assets=dict(self.assets),
            candles={key: dict(rows) for key, rows in self.candles.items()},
            agents=dict(self.agents),
            portfolios={agent_id: p.copy() for agent_id, p in self.portfolios.items()},
            portfolio_versions=dict(self.portfolio_versions),
            decisions=dict(self.decisions),
            equity={agent_id: list(rows) for agent_id, rows in self.equity.items()},
            cycles=dict(self.cycles),
            next_agent_id=self.next_agent_id,
        )


class FakeAssetRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def list(self, *, active_only: bool = True) -> list[Asset]:
        assets = sorted(self._uow.state.assets.values(), key=lambda a: a.symbol)
        return [a for a in assets if a.active or not active_only]

    def upsert(self, asset: Asset) -> None:
        self._uow.state.assets[asset.symbol] = asset


class FakeCandleRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def upsert(self, candles: Sequence[Candle]) -> int:
        written = 0
        for candle in candles:
            rows = self._uow.state.candles.setdefault((candle.symbol, candle.interval), {})
            if rows.get(candle.open_time) != candle:
                rows[candle.open_time] = candle
                written += 1
        return written

    def window(self, symbols: Iterable[str], interval: str, *, at: datetime, count: int) -> dict[str, list[Candle]]:
        result: dict[str, list[Candle]] = {}
        for symbol in symbols:
            rows = self._uow.state.candles.get((symbol, interval), {})
            closed = sorted((c for c in rows.values() if c.close_time <= at), key=lambda c: c.open_time)
            if closed[-count:]:
                result[symbol] = closed[-count:]
        return result

    def latest_open_time(self, symbol: str, interval: str) -> datetime | None:
        rows = self._uow.state.candles.get((symbol, interval))
        return max(rows) if rows else None

    def latest_open_times(self, symbols: Iterable[str], interval: str) -> dict[str, datetime | None]:
        return {symbol: self.latest_open_time(symbol, interval) for symbol in symbols}


class FakeAgentRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def list(self, *, active_only: bool = False) -> list[Agent]:
        agents = sorted(self._uow.state.agents.values(), key=lambda a: a.id)
        return [a for a in agents if a.active or not active_only]

    def get(self, agent_id: int) -> Agent | None:
        return self._uow.state.agents.get(agent_id)

    def get_by_name(self, name: str) -> Agent | None:
        return next((a for a in self._uow.state.agents.values() if a.name == name), None)

    def add(self, agent: Agent) -> Agent:
        state = self._uow.state
        stored = replace(agent, id=state.next_agent_id)
        state.agents[stored.id] = stored
        state.next_agent_id += 1
        return stored

    def set_active(self, agent_id: int, *, active: bool, reason: str | None) -> None:
        agent = self._uow.state.agents[agent_id]
        self._uow.state.agents[agent_id] = replace(agent, active=active, inactive_reason=reason)


class FakePortfolioRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def get(self, agent_id: int) -> Portfolio | None:
        stored = self._uow.state.portfolios.get(agent_id)
        return stored.copy() if stored else None

    def get_many(self, agent_ids: Iterable[int]) -> dict[int, Portfolio]:
        return {agent_id: p for agent_id in agent_ids if (p := self.get(agent_id)) is not None}

    def get_many_versioned(self, agent_ids: Iterable[int]) -> dict[int, VersionedPortfolio]:
        versions = self._uow.state.portfolio_versions
        return {
            agent_id: VersionedPortfolio(p, versions.get(agent_id, 0))
            for agent_id, p in self.get_many(agent_ids).items()
        }

    def save(self, portfolio: Portfolio) -> None:
        if portfolio.agent_id in self._uow.factory.failing_portfolio_saves:
            raise RuntimeError(f"simulated database error saving portfolio {portfolio.agent_id}")
        state = self._uow.state
        state.portfolios[portfolio.agent_id] = portfolio.copy()
        state.portfolio_versions[portfolio.agent_id] = state.portfolio_versions.get(portfolio.agent_id, 0) + 1

    def replace(self, stored: VersionedPortfolio, portfolio: Portfolio) -> bool:
        # Compared with the shared state too, as the database's row would be: a concurrent run may have
        # committed a newer version since this unit of work began.
        agent_id = portfolio.agent_id
        committed = self._uow.factory.state.portfolio_versions.get(agent_id, 0)
        if self._uow.state.portfolio_versions.get(agent_id, 0) != stored.version or committed != stored.version:
            return False
        self.save(portfolio)
        return True


class FakeDecisionRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def decided_agent_ids(self, cycle_time: datetime) -> set[int]:
        return {agent_id for agent_id, at in self._uow.state.decisions if at == cycle_time}

    def add(self, record: DecisionRecord) -> None:
        key = (record.agent_id, record.cycle_time)
        # A concurrent run may have committed since this unit of work began: check the shared state too,
        # as a database unique constraint would.
        if key in self._uow.state.decisions or key in self._uow.factory.state.decisions:
            raise DuplicateDecisionError(f"agent {record.agent_id} already decided cycle {record.cycle_time}")
        self._uow.state.decisions[key] = record

    def add_many(self, records: Sequence[DecisionRecord]) -> None:
        for record in records:
            self.add(record)

    def cycle_totals(self, cycle_time: datetime) -> tuple[int, int]:
        records = [r for (_, at), r in self._uow.state.decisions.items() if at == cycle_time]
        return len(records), sum(len(r.trades) for r in records)

    def latest_cycle_time(self) -> datetime | None:
        return max((at for _, at in self._uow.state.decisions), default=None)


class FakeEquityRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def latest(self, agent_id: int) -> EquitySnapshot | None:
        rows = self._uow.state.equity.get(agent_id)
        return max(rows, key=lambda s: s.at) if rows else None

    def latest_many(self, agent_ids: Iterable[int]) -> dict[int, EquitySnapshot]:
        return {agent_id: s for agent_id in agent_ids if (s := self.latest(agent_id)) is not None}

    def add(self, snapshot: EquitySnapshot) -> bool:
        rows = self._uow.state.equity.setdefault(snapshot.agent_id, [])
        if any(s.at == snapshot.at for s in rows):
            return False
        if any(s.ordinal == snapshot.ordinal for s in rows):  # the real table's unique (agent_id, ordinal)
            raise ValueError(f"agent {snapshot.agent_id} already has an equity snapshot numbered {snapshot.ordinal}")
        rows.append(snapshot)
        return True

    def add_many(self, snapshots: Sequence[EquitySnapshot]) -> int:
        return sum(self.add(snapshot) for snapshot in snapshots)

    def marking_inputs(self) -> list[tuple[Portfolio, EquitySnapshot | None]]:
        portfolios = self._uow.state.portfolios
        return [(portfolios[agent_id].copy(), self.latest(agent_id)) for agent_id in sorted(portfolios)]


class FakeCycleRepository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def add(self, record: CycleRecord) -> None:
        self._uow.state.cycles[record.cycle_time] = record

    def record_counted(
        self, *, cycle_time: datetime, snapshot_sha256: str, agents: int, started_at: datetime, finished_at: datetime
    ) -> None:
        decisions, trades = self._uow.decisions.cycle_totals(cycle_time)
        self.add(CycleRecord(cycle_time, snapshot_sha256, agents, decisions, trades, started_at, finished_at))

    def add_many(self, records: Sequence[CycleRecord]) -> None:
        for record in records:
            if record.cycle_time in self._uow.state.cycles or record.cycle_time in self._uow.factory.state.cycles:
                raise ValueError(f"cycle {record.cycle_time} is already recorded")  # the table's primary key
            self.add(record)

    def latest_time(self) -> datetime | None:
        return max(self._uow.state.cycles, default=None)


class FakeUnitOfWork:
    def __init__(self, factory: FakeUnitOfWorkFactory) -> None:
        self.factory = factory
        self.state = factory.state.copy()
        self.committed = False
        self.assets = FakeAssetRepository(self)
        self.candles = FakeCandleRepository(self)
        self.agents = FakeAgentRepository(self)
        self.portfolios = FakePortfolioRepository(self)
        self.decisions = FakeDecisionRepository(self)
        self.equity = FakeEquityRepository(self)
        self.cycles = FakeCycleRepository(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.rollback()

    def commit(self) -> None:
        self.factory.state = self.state.copy()
        self.factory.commits += 1
        self.committed = True

    def rollback(self) -> None:
        self.state = self.factory.state.copy()


class FakeUnitOfWorkFactory:
    """Shares committed state across units of work; counts commits so tests can assert 'nothing written'."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()
        self.commits = 0
        self.failing_portfolio_saves: set[int] = set()

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    # -- test helpers: write straight into the committed state

    def add_assets(self, *assets: Asset) -> None:
        for asset in assets:
            self.state.assets[asset.symbol] = asset

    def add_candles(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self.state.candles.setdefault((candle.symbol, candle.interval), {})[candle.open_time] = candle

    def add_agent(self, name: str, *, provider: str = "fake", model: str = "scripted", **kwargs: object) -> Agent:
        agent = Agent(id=self.state.next_agent_id, name=name, provider=provider, model=model, **kwargs)  # type: ignore[arg-type]
        self.state.agents[agent.id] = agent
        self.state.next_agent_id += 1
        return agent


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def make_candle(
    symbol: str,
    open_time: datetime,
    close: Decimal | str | int = 100,
    *,
    interval: str = "1h",
    open_: Decimal | str | int | None = None,
    high: Decimal | str | int | None = None,
    low: Decimal | str | int | None = None,
    volume: Decimal | str | int = 1,
) -> Candle:
    close_d = Decimal(close)
    open_d = Decimal(open_) if open_ is not None else close_d
    return Candle(
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        open=open_d,
        high=Decimal(high) if high is not None else max(open_d, close_d),
        low=Decimal(low) if low is not None else min(open_d, close_d),
        close=close_d,
        volume=Decimal(volume),
    )


def candle_series(
    symbol: str, closes: Sequence[Decimal | str | int], *, start: datetime = T0, interval: str = "1h"
) -> list[Candle]:
    step = interval_delta(interval)
    return [make_candle(symbol, start + i * step, c, interval=interval) for i, c in enumerate(closes)]


class FakeMarketDataProvider:
    """Serves the candles it was given, honouring start/end like a real provider; can fail per symbol."""

    name = "fake"

    def __init__(self, candles: Iterable[Candle] = (), *, failing: Mapping[str, Exception] | None = None) -> None:
        self.candles = list(candles)
        self.failing = dict(failing or {})
        self.requests: list[tuple[tuple[str, ...], datetime, datetime]] = []

    def fetch_candles(self, assets: Sequence[Asset], *, start: datetime, end: datetime) -> list[Candle]:
        symbols = tuple(a.symbol for a in assets)
        self.requests.append((symbols, start, end))
        for symbol in symbols:
            if symbol in self.failing:
                raise self.failing[symbol]
        return [c for c in self.candles if c.symbol in symbols and c.open_time >= start and c.close_time <= end]


class ScriptedClient:
    """Returns a fixed decision (or raises / sleeps / returns garbage) and records the contexts it saw."""

    def __init__(
        self,
        orders: Sequence[Order] = (),
        *,
        reasoning: str = "scripted",
        sleep_s: float = 0.0,
        error: Exception | None = None,
        result: object = None,
    ) -> None:
        self.orders = tuple(orders)
        self.reasoning = reasoning
        self.sleep_s = sleep_s
        self.error = error
        self.result = result
        self.contexts: list[AgentContext] = []

    async def decide(self, context: AgentContext) -> AgentDecision:
        self.contexts.append(context)
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result  # type: ignore[return-value]  # deliberately not a decision
        return AgentDecision(orders=self.orders, reasoning=self.reasoning, confidence=0.5)


class FakeClientFactory:
    """Maps agent ids to clients; unknown agents get an always-hold client. Counts builds per agent."""

    def __init__(self, clients: Mapping[int, AgentModelClient] | None = None) -> None:
        self.clients: dict[int, AgentModelClient] = dict(clients or {})
        self.calls: list[int] = []

    def __call__(self, agent: Agent) -> AgentModelClient:
        self.calls.append(agent.id)
        return self.clients.setdefault(agent.id, ScriptedClient())
