"""Exactly once under concurrent timers: two processes (separate engines, as two Function hosts would have)
run each timer job for the same time at the same moment, cycle after cycle, on SQLite and on PostgreSQL: 50
cycles called directly as the timers do, 25 where the second host's timer fires late (`past_due`, 20 minutes
into the cycle) at the same moment as the first host's on-time one, and 25 through the admin routes. In every
cycle and for every job, one run applies each agent's work and the other reports it as already done (0
duplicate decisions, trades, equity marks or candles), every portfolio equals its starting cash plus its trades
and fees, and a timer re-firing late after the cycle is done writes nothing."""

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
from shared.config import ApiSettings, ConnectionStrings, MarketDataSettings, Settings

START = datetime(2024, 5, 6, tzinfo=UTC)
MODES = ("direct",) * 50 + ("late",) * 25 + ("admin",) * 25  # how the second host runs each cycle
CYCLES = len(MODES)
KEY = "exactly-once-admin-key"
JOBS = ("market-data", "run-agents", "equity-snapshot")
STARTING_CASH = Decimal(100_000)


def _settings(url: str) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=url),
        market_data=MarketDataSettings(replay_start=START),
        api=ApiSettings(AdminKey=KEY),
    )


def _identity(value: datetime) -> datetime:
    return value


class _LateTimer:
    past_due = True


def _worker(url: str, barrier: Barrier, commands: Queue[Any], results: Queue[Any]) -> None:
    """One Function host: its own engine and container; runs each command right after the other host is ready."""
    from shared.bootstrap import bootstrap

    container = bootstrap(_settings(url))
    while (command := commands.get()) is not None:
        job, at, how = command
        barrier.wait(timeout=60)
        try:
            results.put((job, at, _run(container, job, at, how), None))
        except Exception as exc:  # reported to the test, which fails on it
            results.put((job, at, None, f"{type(exc).__name__}: {exc}"))


def _run(container: Any, job: str, at: datetime, how: str) -> dict[str, Any]:
    """`job` for `at`, as a timer firing on time does (`direct`), as one firing 20 minutes late (`late`), or as
    an operator's POST /api/admin/jobs/{job}?at= (`admin`)."""
    from shared.api.timers import handle_equity_snapshot_timer, handle_market_data_timer, handle_run_agents_timer

    if how == "late":
        clock = functools.partial(_identity, at + timedelta(minutes=20))
        if job == "market-data":
            return handle_market_data_timer(_LateTimer(), container, clock=clock)
        if job == "run-agents":
            return asyncio.run(handle_run_agents_timer(_LateTimer(), container, clock=clock))
        return handle_equity_snapshot_timer(_LateTimer(), container, clock=clock)
    if how == "admin":
        return asyncio.run(_post(container, job, at))
    if job == "market-data":
        return container.run_market_data_job(at).as_dict()  # type: ignore[no-any-return]
    if job == "run-agents":
        return container.run_agents_job(at).as_dict()  # type: ignore[no-any-return]
    return container.run_equity_job(at).as_dict()  # type: ignore[no-any-return]


async def _post(container: Any, job: str, at: datetime) -> dict[str, Any]:
    import httpx

    from shared.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(lambda: container))
    async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
        response = await client.post(
            f"/api/admin/jobs/{job}", params={"at": at.isoformat()}, headers={"x-admin-key": KEY}
        )
    if response.status_code != 200:
        raise AssertionError(f"admin {job} at {at}: {response.status_code} {response.text}")
    report: dict[str, Any] = response.json()["report"]
    return report


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
        # The first host always runs on time; the second as MODES says. Then both re-fire late, the cycle done.
        steps = [(job, START + timedelta(hours=i), (False, MODES[i])) for i in range(CYCLES) for job in JOBS]
        steps += [(job, START + timedelta(hours=CYCLES - 1), (True, "late")) for job in JOBS]
        for job, at, (refire, how) in steps:
            commands[0].put((job, at, "late" if refire else "direct"))
            commands[1].put((job, at, how))
            for _ in hosts:
                got_job, got_at, report, error = results.get(timeout=120)
                assert error is None, f"{got_job} at {got_at}: {error}"
                reports.setdefault((got_job, got_at, refire), []).append(report)
    finally:
        for queue in commands:
            queue.put(None)
        for host in hosts:
            host.join(timeout=30)

    agents = _count(race_url, "SELECT COUNT(*) FROM agents WHERE active")[0][0]
    portfolios = _count(race_url, "SELECT COUNT(*) FROM portfolios")[0][0]  # inactive agents are marked too
    assets = _count(race_url, "SELECT COUNT(*) FROM assets WHERE active")[0][0]
    assert (agents, assets) == (6, 5)
    whole = {"direct": 0, "late": 0, "admin": 0}  # cycles one host applied entirely (else split by agent)
    for i in range(CYCLES):
        at = START + timedelta(hours=i)
        first, second = reports[("run-agents", at, False)]
        assert first["failed"] == second["failed"] == [], (first, second)
        # Every agent applied by one run and reported already done by the other: nothing twice, nothing lost.
        assert first["decided"] + second["decided"] == agents, (MODES[i], first, second)
        assert (first["skipped"], second["skipped"]) == (second["decided"], first["decided"]), (first, second)
        whole[MODES[i]] += agents in (first["decided"], second["decided"])
        first, second = reports[("equity-snapshot", at, False)]
        assert first["written"] + second["written"] == portfolios, (MODES[i], first, second)
        assert (first["skipped"], second["skipped"]) == (second["written"], first["written"]), (first, second)
        first, second = reports[("market-data", at, False)]
        assert first["errors"] == second["errors"] == {}, (first, second)
        if i > 0:  # after the first run's backfill, each hour closes one candle per asset, stored once
            assert first["stored"] + second["stored"] == assets, (MODES[i], first, second)
    late = [r for (job, _, refire), pair in reports.items() if refire for r in pair]
    assert len(late) == 2 * len(JOBS)
    assert all(r.get("decided", 0) == 0 and r.get("written", 0) == 0 and r.get("stored", 0) == 0 for r in late)
    assert all(r["skipped"] == agents for r in late if "decided" in r)  # reported as already done
    print(f"cycles applied whole by one host (the rest split by agent), per mode of the second host: {whole}")

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
