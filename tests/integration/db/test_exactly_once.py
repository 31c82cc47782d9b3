"""Exactly once under concurrent timers: two processes (separate engines, as two Function hosts would have)
run each timer job for the same time at the same moment, cycle after cycle, on SQLite and on PostgreSQL. Every
agent's decision of every cycle is applied once (0 duplicate decisions, trades or equity marks; the runs'
`decided` add up to the agents), every portfolio equals its starting cash plus its trades and fees, and a timer
re-firing late (`past_due`) writes nothing."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import select, text

from shared.adapters.db.engine import make_engine
from shared.adapters.db.models import TradeRow
from shared.bootstrap import set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings

START = datetime(2024, 5, 6, tzinfo=UTC)
CYCLES = 50
JOBS = ("market-data", "run-agents", "equity-snapshot")
STARTING_CASH = Decimal(100_000)


def _settings(url: str) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=url), market_data=MarketDataSettings(replay_start=START)
    )


def _identity(value: datetime) -> datetime:
    return value


class _LateTimer:
    past_due = True


def _worker(url: str, barrier: Barrier, commands: Queue[Any], results: Queue[Any]) -> None:
    """One Function host: its own engine and container; runs each command right after the other host is ready."""
    from shared.api.timers import handle_equity_snapshot_timer, handle_market_data_timer, handle_run_agents_timer
    from shared.bootstrap import bootstrap

    container = bootstrap(_settings(url))
    while (command := commands.get()) is not None:
        job, at, late = command
        barrier.wait(timeout=60)
        try:
            if late:  # the host's timer firing past due, 20 minutes into the cycle
                clock = functools.partial(_identity, at + timedelta(minutes=20))
                if job == "market-data":
                    report = handle_market_data_timer(_LateTimer(), container, clock=clock)
                elif job == "run-agents":
                    report = asyncio.run(handle_run_agents_timer(_LateTimer(), container, clock=clock))
                else:
                    report = handle_equity_snapshot_timer(_LateTimer(), container, clock=clock)
            elif job == "market-data":
                report = container.run_market_data_job(at).as_dict()
            elif job == "run-agents":
                report = container.run_agents_job(at).as_dict()
            else:
                report = container.run_equity_job(at).as_dict()
            results.put((job, at, report, None))
        except Exception as exc:  # reported to the test, which fails on it
            results.put((job, at, None, f"{type(exc).__name__}: {exc}"))


@pytest.fixture
def race_url(db_url: str) -> str:
    from shared.local_race import prepare

    container = prepare(_settings(db_url))  # seeds the six baselines and the assets
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
    set_container(None)
    return db_url


def _count(url: str, sql: str) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).all()
    finally:
        engine.dispose()


def test_two_hosts_running_every_job_at_once_apply_each_cycle_exactly_once(race_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    commands = [context.Queue(), context.Queue()]
    results: Queue[Any] = context.Queue()
    hosts: list[SpawnProcess] = [
        context.Process(target=_worker, args=(race_url, barrier, commands[i], results), daemon=True) for i in (0, 1)
    ]
    for host in hosts:
        host.start()
    reports: dict[tuple[str, datetime, bool], list[dict[str, Any]]] = {}
    try:
        steps = [(job, START + timedelta(hours=i), False) for i in range(CYCLES) for job in JOBS]
        steps += [(job, START + timedelta(hours=CYCLES - 1), True) for job in JOBS]
        for job, at, late in steps:
            for queue in commands:
                queue.put((job, at, late))
            for _ in hosts:
                got_job, got_at, report, error = results.get(timeout=120)
                assert error is None, f"{got_job} at {got_at}: {error}"
                reports.setdefault((got_job, got_at, late), []).append(report)
    finally:
        for queue in commands:
            queue.put(None)
        for host in hosts:
            host.join(timeout=30)

    agents = _count(race_url, "SELECT COUNT(*) FROM agents WHERE active")[0][0]
    portfolios = _count(race_url, "SELECT COUNT(*) FROM portfolios")[0][0]  # inactive agents are marked too
    assert agents == 6
    for i in range(CYCLES):
        pair = reports[("run-agents", START + timedelta(hours=i), False)]
        assert sum(r["decided"] for r in pair) == agents, pair  # each agent applied by exactly one host
        assert all(r["decided"] + r["skipped"] == agents and r["failed"] == [] for r in pair), pair
        marks = reports[("equity-snapshot", START + timedelta(hours=i), False)]
        assert sum(r["written"] for r in marks) == portfolios, marks
    late = [r for (job, _, is_late), pair in reports.items() if is_late for r in pair]
    assert all(r.get("decided", 0) == 0 and r.get("written", 0) == 0 and r.get("stored", 0) == 0 for r in late)

    assert _count(race_url, "SELECT COUNT(*), COUNT(DISTINCT agent_id * 100000 + ordinal) FROM equity_snapshots")[
        0
    ] == (
        portfolios * CYCLES,
        portfolios * CYCLES,
    )
    assert _count(race_url, "SELECT COUNT(*) FROM decisions")[0][0] == agents * CYCLES
    assert _count(race_url, "SELECT COUNT(*) FROM cycles")[0][0] == CYCLES
    trades = _count(race_url, "SELECT COUNT(*) FROM trades")[0][0]
    duplicated = _count(
        race_url,
        "SELECT COUNT(*) FROM (SELECT decision_id, symbol, side FROM trades GROUP BY decision_id, symbol, side "
        "HAVING COUNT(*) > 1) d",
    )[0][0]
    assert trades > 0
    assert duplicated == 0
    _assert_portfolios_add_up(race_url)


def _assert_portfolios_add_up(url: str) -> None:
    """Every portfolio is its starting cash plus the sum of its trades and fees; every position the sum of its
    trades' quantities."""
    from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory

    engine = make_engine(url)
    try:
        with SqlAlchemyUnitOfWorkFactory(engine)() as uow:
            agents = uow.agents.list()
            portfolios = uow.portfolios.get_many([a.id for a in agents])
        with engine.connect() as connection:
            t = TradeRow.__table__.c
            rows = connection.execute(select(t.agent_id, t.symbol, t.side, t.quantity, t.notional, t.fee)).all()
    finally:
        engine.dispose()
    for agent in agents:
        mine = [r for r in rows if r[0] == agent.id]
        cash = STARTING_CASH
        held: dict[str, Decimal] = {}
        for _, symbol, side, quantity, notional, fee in mine:
            sign = 1 if side == "BUY" else -1
            cash += -sign * notional - fee
            held[symbol] = held.get(symbol, Decimal(0)) + sign * quantity
        portfolio = portfolios[agent.id]
        assert portfolio.trade_count == len(mine)
        assert _scaled(portfolio.cash) == _scaled(cash), agent.name
        assert {s: _scaled(q) for s, q in held.items() if q} == {
            s: _scaled(p.quantity) for s, p in portfolio.positions.items()
        }
        assert portfolio.cash >= 0
        assert all(p.quantity > 0 for p in portfolio.positions.values())


def _scaled(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.00000001"))
