"""Use case: run the race over a historical range at full speed (`make backtest`, `--fast-forward`).

A backtest runs every cycle of [start, end) with the pieces the timer jobs use: the market data ingest, the
frozen hashed snapshot (same window rule, so no look-ahead), `decide_all` and its HOLD fallbacks, the rules of
the race, the decision records and the equity marks. It writes the same rows the timer jobs would have
written for those cycles (tests compare them row by row). What differs is the database traffic: the timer
jobs read and write for every cycle (eight transactions, one per agent, DESIGN.md section 3), while a backtest
reads once per chunk of cycles, keeps the portfolios in memory from one cycle to the next, and writes the
chunk's decisions, trades, portfolios, equity snapshots and cycle records in one transaction, with bulk
inserts. A chunk is all or nothing: an interrupted backtest resumes at its first unwritten chunk.

It continues a race and never rewrites one: it refuses a start at or before a cycle already recorded, and a
chunk that meets another writer (a decision, a portfolio or a snapshot written meanwhile) is rolled back
whole and the backtest stops with `BacktestConflictError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.domain.cycles import floor_time
from shared.domain.model import Agent, Candle, EquitySnapshot, Portfolio, interval_delta
from shared.domain.rules import ExecutionResult, RaceRules, execute_orders
from shared.domain.snapshot import MarketSnapshot
from shared.services.deciding import decide_all, decision_record, hold_reason
from shared.services.equity import mark_to_market
from shared.services.ingest import ingest_market_data
from shared.services.ports import (
    AgentClientFactory,
    CycleRecord,
    DecisionRecord,
    DuplicateDecisionError,
    MarketDataProvider,
    UnitOfWork,
    UnitOfWorkFactory,
    VersionedPortfolio,
)

logger = logging.getLogger(__name__)

# A week of hourly cycles per transaction: the per-chunk reads and commit vanish in the cost of the cycles,
# and an interrupted run loses at most one chunk of work.
DEFAULT_CHUNK_CYCLES = 168


class BacktestError(ValueError):
    """The backtest cannot run as asked (bad range, overlap with recorded cycles, market data missing)."""


class BacktestConflictError(RuntimeError):
    """Another writer changed the race during a chunk; the chunk was rolled back, nothing of it was written."""


@dataclass(frozen=True, slots=True)
class BacktestProgress:
    """One written chunk: its cycles, what they decided, and the running totals of the backtest."""

    first: datetime
    last: datetime
    cycles: int
    decisions: int
    trades: int
    total_cycles: int
    total_decisions: int
    total_trades: int


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """What a backtest did. `cycles` counts cycles run; `without_market_data` those with no candle closed at
    or before them (nothing is recorded for such a cycle, as in the timer path)."""

    start: datetime
    end: datetime
    cycles: int
    without_market_data: int
    decisions: int
    trades: int
    rejections: int
    holds: Mapping[str, int]
    chunks: int
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cycles": self.cycles,
            "without_market_data": self.without_market_data,
            "decisions": self.decisions,
            "trades": self.trades,
            "rejections": self.rejections,
            "holds": dict(self.holds),
            "chunks": self.chunks,
            "duration_s": round(self.duration_s, 3),
        }


# A cycle's view of the market: its snapshot's candle windows, and the latest close of every priced symbol.
_CycleMarket = tuple[dict[str, list[Candle]], dict[str, Decimal]]


@dataclass(slots=True)
class _Chunk:
    """A chunk's state as read at its start, and everything it will write."""

    active: list[Agent]
    stored: dict[int, VersionedPortfolio]
    portfolios: dict[int, Portfolio]
    latest_equity: dict[int, EquitySnapshot]
    windows: dict[datetime, _CycleMarket]
    records: list[DecisionRecord] = field(default_factory=list)
    cycles: list[CycleRecord] = field(default_factory=list)
    snapshots: list[EquitySnapshot] = field(default_factory=list)
    rejections: int = 0
    holds: Counter[str] = field(default_factory=Counter)
    without_market_data: int = 0


async def run_backtest(
    *,
    uow_factory: UnitOfWorkFactory,
    provider: MarketDataProvider,
    clients: AgentClientFactory,
    start: datetime,
    end: datetime,
    cycle: timedelta,
    rules: RaceRules,
    interval: str,
    snapshot_candles: int,
    backfill: timedelta,
    agent_timeout_s: float,
    max_concurrency: int,
    chunk_cycles: int = DEFAULT_CHUNK_CYCLES,
    on_chunk: Callable[[BacktestProgress], None] | None = None,
) -> BacktestReport:
    """Run the cycles start, start + cycle, ... before `end`, chunk by chunk (see the module docstring)."""
    start, count = _cycle_range(start, end, cycle)
    if chunk_cycles < 1:
        raise BacktestError("chunk_cycles must be at least 1")
    if max_concurrency < 1:
        raise BacktestError("max_concurrency must be at least 1")
    await asyncio.to_thread(_check_continues_race, uow_factory, start, cycle)

    began = time.perf_counter()
    totals = Counter[str]()
    holds = Counter[str]()
    chunks = 0
    for offset in range(0, count, chunk_cycles):
        chunk_times = [start + index * cycle for index in range(offset, min(offset + chunk_cycles, count))]
        # Market data first, as the market-data timer fires before the agents: every candle closed by the
        # chunk's last cycle, so each cycle of the chunk finds what the timers would have stored by then.
        await asyncio.to_thread(_ingest, uow_factory, provider, start, chunk_times[-1], interval, backfill)
        chunk = await asyncio.to_thread(_read, uow_factory, chunk_times, interval, snapshot_candles)
        for at in chunk_times:
            await _run_cycle(chunk, at, clients, rules, agent_timeout_s, max_concurrency)
        await asyncio.to_thread(_write, uow_factory, chunk)

        chunks += 1
        trades = sum(len(record.trades) for record in chunk.records)
        totals.update(
            cycles=len(chunk_times),
            decisions=len(chunk.records),
            trades=trades,
            rejections=chunk.rejections,
            without_market_data=chunk.without_market_data,
        )
        holds.update(chunk.holds)
        progress = BacktestProgress(
            first=chunk_times[0],
            last=chunk_times[-1],
            cycles=len(chunk_times),
            decisions=len(chunk.records),
            trades=trades,
            total_cycles=totals["cycles"],
            total_decisions=totals["decisions"],
            total_trades=totals["trades"],
        )
        logger.info("backtest chunk written: %s", progress)
        if on_chunk is not None:
            on_chunk(progress)

    return BacktestReport(
        start=start,
        end=end,
        cycles=totals["cycles"],
        without_market_data=totals["without_market_data"],
        decisions=totals["decisions"],
        trades=totals["trades"],
        rejections=totals["rejections"],
        holds=dict(holds),
        chunks=chunks,
        duration_s=time.perf_counter() - began,
    )


def _cycle_range(start: datetime, end: datetime, cycle: timedelta) -> tuple[datetime, int]:
    """`start` in UTC and the number of cycles from it strictly before `end`, once both are checked."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BacktestError("naive start or end: a backtest's times are UTC-aware")
    if cycle <= timedelta(0):
        raise BacktestError("the cycle length must be positive")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if floor_time(start, cycle) != start:
        raise BacktestError(f"start {start.isoformat()} is not a cycle time (a multiple of {cycle} since the epoch)")
    if end <= start:
        raise BacktestError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    return start, -((start - end) // cycle)


def _check_continues_race(uow_factory: UnitOfWorkFactory, start: datetime, cycle: timedelta) -> None:
    with uow_factory() as uow:
        recorded = [t for t in (uow.cycles.latest_time(), uow.decisions.latest_cycle_time()) if t is not None]
    if recorded and max(recorded) >= start:
        latest = max(recorded)
        raise BacktestError(
            f"the race already has cycles up to {latest.isoformat()}: a backtest continues a race and never "
            f"rewrites one, so start at {(latest + cycle).isoformat()} or later (or use a fresh database)"
        )


def _ingest(
    uow_factory: UnitOfWorkFactory,
    provider: MarketDataProvider,
    start: datetime,
    now: datetime,
    interval: str,
    backfill: timedelta,
) -> None:
    # On an empty table the timer path's first ingest (at `start`) reaches back `backfill`: reach as far.
    report = ingest_market_data(
        uow_factory=uow_factory, provider=provider, now=now, interval=interval, backfill=backfill + (now - start)
    )
    if report.errors:
        # The timer path would decide on stale data and backfill later; a backtest stops instead, so that
        # running it again gives the same race.
        failures = "; ".join(f"{symbol}: {error}" for symbol, error in sorted(report.errors.items()))
        raise BacktestError(f"market data up to {now.isoformat()} could not be fetched ({failures})")


def _read(uow_factory: UnitOfWorkFactory, times: Sequence[datetime], interval: str, snapshot_candles: int) -> _Chunk:
    """The race as stored at the chunk's start, and each cycle's candle windows (read up front: no database
    connection is held while agents think)."""
    with uow_factory() as uow:
        agents = uow.agents.list(active_only=False)
        active = [agent for agent in agents if agent.active]
        stored = uow.portfolios.get_many_versioned(agent.id for agent in agents)
        latest_equity = uow.equity.latest_many(stored)
        assets = uow.assets.list(active_only=False)
        tradable = [asset.symbol for asset in assets if asset.active]
        # What the equity job prices: every asset, active or not, and anything a portfolio holds.
        priced = sorted({asset.symbol for asset in assets}.union(*(s.portfolio.positions for s in stored.values())))
        windows = _windows(uow, times, tradable, priced, interval, snapshot_candles)
    portfolios = {agent_id: found.portfolio.copy() for agent_id, found in stored.items()}
    return _Chunk(active, stored, portfolios, latest_equity, windows)


def _windows(
    uow: UnitOfWork,
    times: Sequence[datetime],
    tradable: Sequence[str],
    priced: Sequence[str],
    interval: str,
    snapshot_candles: int,
) -> dict[datetime, _CycleMarket]:
    """Per cycle time: the snapshot's candle windows and the latest close per priced symbol, exactly what
    `CandleRepository.window` answers at that time, cut from one read of the chunk's history."""
    step = interval_delta(interval)
    depth = max(snapshot_candles, 1) + (times[-1] - times[0]) // step + 1
    symbols = sorted(set(tradable).union(priced))
    history = uow.candles.window(symbols, interval, at=times[-1], count=depth)
    closes = {symbol: [candle.close_time for candle in rows] for symbol, rows in history.items()}

    def cut(symbol: str, at: datetime, count: int) -> list[Candle] | None:
        """The last `count` candles closed by `at`; None when the history read may lack older ones."""
        rows = history.get(symbol)
        if not rows:
            return []
        end = bisect_right(closes[symbol], at)
        if end < count and len(rows) == depth:  # cut short by the read, not by the start of the data
            return None
        return rows[max(0, end - count) : end]

    def window(symbol: str, at: datetime, count: int) -> list[Candle]:
        rows = cut(symbol, at, count)
        if rows is None:  # rare (irregular candle times): ask the repository itself
            rows = uow.candles.window([symbol], interval, at=at, count=count).get(symbol, [])
        return rows

    windows: dict[datetime, _CycleMarket] = {}
    for at in times:
        candles = {symbol: rows for symbol in tradable if (rows := window(symbol, at, snapshot_candles))}
        prices = {symbol: rows[-1].close for symbol in priced if (rows := window(symbol, at, 1))}
        windows[at] = (candles, prices)
    return windows


async def _run_cycle(
    chunk: _Chunk,
    at: datetime,
    clients: AgentClientFactory,
    rules: RaceRules,
    agent_timeout_s: float,
    max_concurrency: int,
) -> None:
    """One cycle on the chunk's in-memory race: decide, execute, record, then mark every portfolio."""
    started_at = datetime.now(UTC)
    candles, prices = chunk.windows.pop(at)
    snapshot = MarketSnapshot.build(at, candles)
    if not snapshot.candles:
        chunk.without_market_data += 1  # the timer path records nothing for such a cycle either
    elif chunk.active:
        portfolios = chunk.portfolios
        for agent in chunk.active:
            if agent.id not in portfolios:
                portfolios[agent.id] = Portfolio(agent.id, rules.starting_cash)
        decisions = await decide_all(
            chunk.active,
            clients,
            snapshot,
            portfolios,
            rules,
            timeout_s=agent_timeout_s,
            max_concurrency=max_concurrency,
        )
        staleness = snapshot.staleness()
        staleness_s = staleness.total_seconds() if staleness is not None else None
        last_prices, stale = snapshot.last_prices, snapshot.stale_prices(rules.max_price_age)
        trades = 0
        for agent in chunk.active:  # id order, as the timer path writes them
            decision = decisions[agent.id]
            portfolio = portfolios[agent.id]
            result = (
                execute_orders(portfolio, decision.orders, last_prices, rules, stale=stale)
                if decision.orders
                else ExecutionResult(portfolio, (), ())
            )
            portfolios[agent.id] = result.portfolio
            chunk.records.append(decision_record(agent.id, snapshot, decision, result, staleness_s))
            trades += len(result.trades)
            chunk.rejections += len(decision.rejections) + len(result.rejections)
            if (reason := hold_reason(decision)) is not None:
                chunk.holds[reason] += 1
        chunk.cycles.append(
            CycleRecord(
                cycle_time=at,
                snapshot_sha256=snapshot.sha256,
                agents=len(chunk.active),
                decisions=len(chunk.active),
                trades=trades,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            )
        )
    # The equity job: every portfolio the database would hold by now, marked at the latest closes.
    marks = mark_to_market(
        ((portfolio, chunk.latest_equity.get(agent_id)) for agent_id, portfolio in chunk.portfolios.items()),
        prices,
        at,
    )
    for mark in marks:
        chunk.latest_equity[mark.agent_id] = mark
    chunk.snapshots.extend(marks)


def _write(uow_factory: UnitOfWorkFactory, chunk: _Chunk) -> None:
    """Everything the chunk did, in one transaction; any sign of another writer rolls it all back."""
    first = chunk.cycles[0].cycle_time.isoformat() if chunk.cycles else "?"
    conflict = f"another writer changed the race during the backtest's chunk from {first}; nothing of it was written"
    with uow_factory() as uow:
        new = sorted(agent_id for agent_id in chunk.portfolios if agent_id not in chunk.stored)
        if new and uow.portfolios.get_many_versioned(new):
            raise BacktestConflictError(f"{conflict} (a portfolio was created meanwhile)")
        for agent_id, stored in sorted(chunk.stored.items()):
            # Written even when unchanged: the version check is what proves nobody else wrote it meanwhile.
            if not uow.portfolios.replace(stored, chunk.portfolios[agent_id]):
                raise BacktestConflictError(f"{conflict} (agent {agent_id}'s portfolio changed)")
        for agent_id in new:
            uow.portfolios.save(chunk.portfolios[agent_id])
        try:
            uow.decisions.add_many(chunk.records)
        except DuplicateDecisionError as exc:
            raise BacktestConflictError(f"{conflict} (a decision was recorded meanwhile)") from exc
        if uow.equity.add_many(chunk.snapshots) != len(chunk.snapshots):
            raise BacktestConflictError(f"{conflict} (an equity snapshot was recorded meanwhile)")
        uow.cycles.add_many(chunk.cycles)
        uow.commit()
