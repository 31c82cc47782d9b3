"""A PostgreSQL outage in the middle of a cycle: the server (our own instance, never the shared test server) is
stopped while the agents are deciding and started again a few seconds later. `/api/health` answers 503 while it
is down and 200 once it is back; the answers already received are recorded, not lost (no agent is asked twice),
nothing is half-written, and the next cycle runs on the same engine by itself."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.api.app import create_app
from shared.bootstrap import bootstrap
from shared.config import ConnectionStrings, DatabaseSettings, Settings
from shared.domain.model import Agent, AgentDecision, Asset
from shared.domain.rules import RaceRules
from shared.services.cycle import CycleReport, run_cycle
from shared.services.ports import AgentContext
from tests.fakes import T0, FakeClientFactory, candle_series
from tests.integration.db.pg_server import PostgresServer

pytestmark = pytest.mark.postgres
CYCLE = T0.replace(day=3)


class OutageDuringDecision:
    """Answers with a buy, after stopping the database (the first agent only); restarts it a few seconds on."""

    def __init__(
        self, server: PostgresServer, *, stop: bool, while_down: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.server, self.stop, self.asked, self.while_down = server, stop, 0, while_down

    async def decide(self, context: AgentContext) -> AgentDecision:
        from decimal import Decimal

        from shared.domain.model import Order, Side

        self.asked += 1
        if self.stop:
            self.stop = False  # once: the next cycle runs on a healthy database
            await asyncio.to_thread(self.server.stop)
            threading.Timer(3.0, self.server.start).start()
            if self.while_down is not None:
                await self.while_down()
        return AgentDecision(
            orders=(Order("BTC", Side.BUY, notional_usd=Decimal(1000)),), reasoning="paid for", raw_response="{}"
        )


async def _health(url: str) -> tuple[int, str]:
    """What a fresh app (no cached probe) answers on /api/health for the race in `url`."""
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=url),
        database=DatabaseSettings(ConnectTimeoutSeconds=2, StatementTimeoutSeconds=5),
    )
    container = bootstrap(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(lambda: container))
        async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
            response = await client.get("/api/health")
        return response.status_code, response.json()["checks"]["database"]
    finally:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]


def test_a_cycle_survives_the_database_stopping_and_starting_again(
    server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upgrade(server.url)
    engine = make_engine(server.url, timeouts=(2, 5))
    uow_factory = SqlAlchemyUnitOfWorkFactory(engine)
    with uow_factory() as uow:
        uow.assets.upsert(Asset("BTC", "Bitcoin", "bitcoin"))
        uow.candles.upsert(candle_series("BTC", [50_000 + i for i in range(48)]))
        agents = [uow.agents.add(Agent(0, f"agent {i}", "fake", "outage")) for i in range(3)]
        uow.commit()
    health_while_down: list[tuple[int, str]] = []

    async def check_health() -> None:
        health_while_down.append(await _health(server.url))

    clients = {
        a.id: OutageDuringDecision(server, stop=(i == 0), while_down=check_health if i == 0 else None)
        for i, a in enumerate(agents)
    }

    def cycle(at: datetime) -> CycleReport:
        return asyncio.run(
            run_cycle(
                uow_factory=uow_factory,
                clients=FakeClientFactory(clients),
                cycle_time=at,
                rules=RaceRules(),
                interval="1h",
                snapshot_candles=24,
                agent_timeout_s=30,
                max_concurrency=4,
                record_retry_delays=(1, 2, 4, 8),
            )
        )

    started = time.monotonic()
    report = cycle(CYCLE)

    assert (report.decided, report.failed) == (3, ()), report
    assert health_while_down == [(503, "unavailable")]
    assert asyncio.run(_health(server.url)) == (200, "ok")
    assert any("could not record" in r.getMessage() for r in caplog.records)  # the outage did hit the writes
    assert time.monotonic() - started < 30
    assert [c.asked for c in clients.values()] == [1, 1, 1]  # answers kept across the outage: nobody asked twice
    following = cycle(CYCLE + timedelta(hours=1))  # the race goes on, on the same engine and pool
    assert (following.decided, following.failed) == (3, ()), following
    engine.dispose()
    engine = make_engine(server.url)
    with engine.connect() as connection:
        decisions = connection.execute(text("SELECT agent_id, reasoning, trade_count FROM decisions")).all()
        trades = connection.execute(text("SELECT agent_id FROM trades ORDER BY agent_id")).scalars().all()
        versions = connection.execute(text("SELECT agent_id, trade_count FROM portfolios")).all()
    engine.dispose()
    assert sorted((d[0], d[1], d[2]) for d in decisions) == sorted([(a.id, "paid for", 1) for a in agents] * 2)
    assert trades == sorted([a.id for a in agents] * 2)  # each decision with its trade and portfolio change: whole
    assert sorted(versions) == [(a.id, 2) for a in agents]
