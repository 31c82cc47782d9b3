"""The backtest: the same race as the timer jobs, written a chunk at a time, never over a recorded one."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.adapters.agents.baselines import BuyAndHold, MeanReversion, Momentum, RandomTrader
from shared.domain.model import AgentDecision, Asset, Order, Portfolio, Side
from shared.domain.rules import RaceRules
from shared.services.backtest import BacktestConflictError, BacktestError, BacktestReport, run_backtest
from shared.services.cycle import run_cycle
from shared.services.equity import snapshot_equity
from shared.services.ingest import ingest_market_data
from shared.services.ports import AgentContext, AgentModelClient
from tests.fakes import (
    T0,
    FakeClientFactory,
    FakeMarketDataProvider,
    FakeState,
    FakeUnitOfWorkFactory,
    ScriptedClient,
    candle_series,
)

HOUR = timedelta(hours=1)
RULES = RaceRules()
BACKFILL = timedelta(hours=48)
# Prices that rise, fall and swing, so momentum, mean reversion and the random trader all trade.
BTC = [50_000 + 400 * ((i % 17) - 8) * (1 if i % 3 else -1) + 30 * i for i in range(120)]
ETH = [2_000 + 25 * ((i * 7) % 11) - 3 * i for i in range(120)]
PROVIDER_START = T0 - 48 * HOUR


def market_data(**kwargs: Any) -> FakeMarketDataProvider:
    candles = candle_series("BTC", BTC, start=PROVIDER_START) + candle_series("ETH", ETH, start=PROVIDER_START)
    return FakeMarketDataProvider(candles, **kwargs)


class Greedy:
    """Buys ETH with a fixed notional every cycle, until the rules reject it (cash runs out)."""

    async def decide(self, context: AgentContext) -> AgentDecision:
        return AgentDecision((Order("ETH", Side.BUY, notional_usd=Decimal(30_000)),), "more ETH", 0.9)


def race(*, inactive_with_portfolio: bool = True) -> tuple[FakeUnitOfWorkFactory, FakeClientFactory]:
    """A race with every kind of racer: the baselines, one that trades until rejected, one that fails."""
    uow = FakeUnitOfWorkFactory(FakeState())
    uow.add_assets(Asset("BTC", "Bitcoin", "bitcoin"), Asset("ETH", "Ethereum", "ethereum"))
    clients: dict[int, AgentModelClient] = {
        uow.add_agent("buy and hold").id: BuyAndHold(symbol="BTC"),
        uow.add_agent("momentum").id: Momentum(lookback=6, top_n=1, min_momentum=Decimal("0.001")),
        uow.add_agent("mean reversion").id: MeanReversion(window=8, entry_z=Decimal("1.2")),
        uow.add_agent("random").id: RandomTrader(seed=7, trade_probability=Decimal("0.5")),
        uow.add_agent("greedy").id: Greedy(),
        uow.add_agent("broken").id: ScriptedClient(error=RuntimeError("model server down")),
    }
    if inactive_with_portfolio:  # retired racer: it no longer decides, but its portfolio is still marked
        retired = uow.add_agent("retired", active=False)
        uow.state.portfolios[retired.id] = Portfolio(retired.id, Decimal(90_000))
        uow.state.portfolio_versions[retired.id] = 1
    return uow, FakeClientFactory(clients)


def timer_jobs(
    uow: FakeUnitOfWorkFactory, clients: FakeClientFactory, provider: FakeMarketDataProvider, n: int
) -> None:
    """What the Functions timers do for n hourly cycles from T0: market data, agents, equity."""
    for at in (T0 + i * HOUR for i in range(n)):
        ingest_market_data(uow_factory=uow, provider=provider, now=at, interval="1h", backfill=BACKFILL)
        asyncio.run(
            run_cycle(
                uow_factory=uow,
                clients=clients,
                cycle_time=at,
                rules=RULES,
                interval="1h",
                snapshot_candles=24,
                agent_timeout_s=5,
                max_concurrency=4,
            )
        )
        snapshot_equity(uow_factory=uow, at=at, interval="1h")


def backtest(
    uow: FakeUnitOfWorkFactory,
    clients: FakeClientFactory,
    provider: FakeMarketDataProvider,
    *,
    start: datetime = T0,
    end: datetime,
    chunk_cycles: int = 7,
) -> BacktestReport:
    return asyncio.run(
        run_backtest(
            uow_factory=uow,
            provider=provider,
            clients=clients,
            start=start,
            end=end,
            cycle=HOUR,
            rules=RULES,
            interval="1h",
            snapshot_candles=24,
            backfill=BACKFILL,
            agent_timeout_s=5,
            max_concurrency=4,
            chunk_cycles=chunk_cycles,
        )
    )


def stored_race(state: FakeState) -> dict[str, Any]:
    """Everything stored, less what differs between any two runs (wall-clock times, a fallback's latency)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    decisions = {
        key: dataclasses.replace(
            record, decided_at=epoch, decision=dataclasses.replace(record.decision, latency_ms=None)
        )
        for key, record in state.decisions.items()
    }
    cycles = {at: dataclasses.replace(r, started_at=epoch, finished_at=epoch) for at, r in state.cycles.items()}
    return {
        "candles": state.candles,
        "decisions": decisions,
        "portfolios": state.portfolios,
        "equity": state.equity,
        "cycles": cycles,
    }


def test_a_backtest_stores_exactly_what_the_timer_jobs_store() -> None:
    timed, timed_clients = race()
    timer_jobs(timed, timed_clients, market_data(), 40)
    tested, tested_clients = race()

    report = backtest(tested, tested_clients, market_data(), end=T0 + 40 * HOUR, chunk_cycles=7)

    assert stored_race(tested.state) == stored_race(timed.state)
    state = tested.state
    assert report.cycles == 40
    assert report.chunks == 6
    assert report.without_market_data == 0  # the backfill reaches 48 hours before the first cycle
    assert report.decisions == len(state.decisions) == 40 * 6
    assert report.trades == sum(len(r.trades) for r in state.decisions.values()) > 20
    assert report.rejections > 0  # the greedy racer ran out of cash
    assert report.holds["error: RuntimeError: model server down"] == 40  # failures are recorded HOLDs
    assert {len(state.equity[agent_id]) for agent_id in state.portfolios} == {40}  # the retired one too
    assert [s.ordinal for s in state.equity[1]] == list(range(1, 41))
    traders = {agent_id for (agent_id, _), record in state.decisions.items() if record.trades}
    assert traders == {1, 2, 3, 4, 5}


def test_a_backtest_in_pieces_is_the_same_race_and_continues_the_timer_jobs() -> None:
    whole, whole_clients = race()
    backtest(whole, whole_clients, market_data(), end=T0 + 30 * HOUR, chunk_cycles=24)
    pieces, piece_clients = race()
    timer_jobs(pieces, piece_clients, market_data(), 5)  # the race ran live for five hours first
    backtest(pieces, piece_clients, market_data(), start=T0 + 5 * HOUR, end=T0 + 17 * HOUR, chunk_cycles=5)
    backtest(pieces, piece_clients, market_data(), start=T0 + 17 * HOUR, end=T0 + 30 * HOUR, chunk_cycles=100)

    assert stored_race(pieces.state) == stored_race(whole.state)


def test_cycles_before_the_market_data_starts_record_nothing_as_in_the_timer_path() -> None:
    timed, timed_clients = race(inactive_with_portfolio=False)
    late = FakeMarketDataProvider([c for c in market_data().candles if c.open_time >= T0 + 3 * HOUR])
    timer_jobs(timed, timed_clients, late, 8)
    tested, tested_clients = race(inactive_with_portfolio=False)

    report = backtest(tested, tested_clients, late, end=T0 + 8 * HOUR, chunk_cycles=3)

    assert stored_race(tested.state) == stored_race(timed.state)
    assert report.without_market_data == 4  # the first candle opens at +3h and closes at +4h
    assert min(at for _, at in tested.state.decisions) == T0 + 4 * HOUR
    assert min(tested.state.cycles) == T0 + 4 * HOUR


def test_a_backtest_never_rewrites_recorded_cycles() -> None:
    uow, clients = race()
    timer_jobs(uow, clients, market_data(), 3)
    before, commits = stored_race(uow.state), uow.commits

    with pytest.raises(BacktestError, match=r"cycles up to 2024-03-01T02:00:00\+00:00.*start at 2024-03-01T03:00"):
        backtest(uow, clients, market_data(), start=T0 + 2 * HOUR, end=T0 + 10 * HOUR)

    assert uow.commits == commits
    assert stored_race(uow.state) == before


def test_a_decision_without_a_cycle_record_also_counts_as_recorded() -> None:
    """The timer path commits each agent's decision before the cycle's summary: a crash between them leaves
    decisions of a cycle that has no record yet. A backtest must not start there either."""
    uow, clients = race()
    timer_jobs(uow, clients, market_data(), 2)
    del uow.state.cycles[T0 + HOUR]
    with pytest.raises(BacktestError, match="start at 2024-03-01T02:00"):
        backtest(uow, clients, market_data(), start=T0 + HOUR, end=T0 + 5 * HOUR)


@pytest.mark.parametrize(
    ("start", "end", "chunk_cycles", "message"),
    [
        (T0.replace(tzinfo=None), T0 + HOUR, 7, "naive start or end"),
        (T0, (T0 + HOUR).replace(tzinfo=None), 7, "naive start or end"),
        (T0, T0, 7, "must be after start"),
        (T0 + 2 * HOUR, T0, 7, "must be after start"),
        (T0 + timedelta(minutes=30), T0 + 2 * HOUR, 7, "not a cycle time"),
        (T0, T0 + 2 * HOUR, 0, "chunk_cycles must be at least 1"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    start: datetime, end: datetime, chunk_cycles: int, message: str
) -> None:
    uow, clients = race()
    provider = market_data()
    with pytest.raises(BacktestError, match=message):
        backtest(uow, clients, provider, start=start, end=end, chunk_cycles=chunk_cycles)
    assert uow.commits == 0
    assert provider.requests == []


def test_market_data_failure_stops_the_backtest_before_the_chunk_is_decided() -> None:
    uow, clients = race()
    provider = market_data(failing={"ETH": ConnectionError("provider unreachable")})
    with pytest.raises(BacktestError, match=r"could not be fetched \(ETH: ConnectionError: provider unreachable\)"):
        backtest(uow, clients, provider, end=T0 + 10 * HOUR)
    assert uow.state.decisions == {}
    assert uow.state.equity == {}
    assert uow.state.cycles == {}


class Interloper:
    """Holds, and at one cycle commits a change to another agent's portfolio, as a concurrent writer would."""

    def __init__(self, uow: FakeUnitOfWorkFactory, at: datetime, victim: int) -> None:
        self.uow, self.at, self.victim = uow, at, victim

    async def decide(self, context: AgentContext) -> AgentDecision:
        if context.cycle_time == self.at:
            with self.uow() as unit:
                unit.portfolios.save(Portfolio(self.victim, Decimal(1)))
                unit.commit()
        return AgentDecision((), "hold", 0.5)


def test_another_writer_during_a_chunk_rolls_the_whole_chunk_back() -> None:
    uow, clients = race()
    interloper = uow.add_agent("interloper")
    clients.clients[interloper.id] = Interloper(uow, T0 + 9 * HOUR, victim=1)

    with pytest.raises(BacktestConflictError, match=r"from 2024-03-01T07:00:00.*agent 1's portfolio changed"):
        backtest(uow, clients, market_data(), end=T0 + 20 * HOUR, chunk_cycles=7)

    state = uow.state  # the first chunk (cycles 0-6) stands; nothing of the second was written
    assert max(state.cycles) == T0 + 6 * HOUR
    assert max(at for _, at in state.decisions) == T0 + 6 * HOUR
    assert {snapshot.at for rows in state.equity.values() for snapshot in rows} == {T0 + i * HOUR for i in range(7)}
    assert state.portfolios[1].cash == Decimal(1)  # the other writer's change is kept, not overwritten
