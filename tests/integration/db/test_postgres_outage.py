"""A PostgreSQL outage in the middle of a cycle: the server (our own instance, never the shared test server) is
stopped while the agents are deciding and started again a few seconds later. The answers already received are
recorded, not lost (no agent is asked twice), nothing is half-written, and the race goes on by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import Agent, AgentDecision, Asset
from shared.domain.rules import RaceRules
from shared.services.cycle import run_cycle
from shared.services.ports import AgentContext
from tests.fakes import T0, FakeClientFactory, candle_series

pytestmark = pytest.mark.postgres
CYCLE = T0.replace(day=3)


class PostgresServer:
    """A throwaway PostgreSQL server that the test may stop and start."""

    def __init__(self, root: Path) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.skip("PostgreSQL binaries are not installed")
        self.bin, self.root = Path(bins[-1]), root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.getuid() == 0:
            shutil.chown(root, "postgres")
        self._run("initdb", "-A", "trust", "-U", "postgres", "-D", str(root / "data"))

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="trading-race-pg-outage."))  # not under pytest's root-only folder
    server = PostgresServer(root)
    server.start()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop()
    shutil.rmtree(root, ignore_errors=True)


class OutageDuringDecision:
    """Answers with a buy, after stopping the database (the first agent only); restarts it a few seconds on."""

    def __init__(self, server: PostgresServer, *, stop: bool) -> None:
        self.server, self.stop, self.asked = server, stop, 0

    async def decide(self, context: AgentContext) -> AgentDecision:
        from decimal import Decimal

        from shared.domain.model import Order, Side

        self.asked += 1
        if self.stop:
            await asyncio.to_thread(self.server.stop)
            threading.Timer(3.0, self.server.start).start()
        return AgentDecision(
            orders=(Order("BTC", Side.BUY, notional_usd=Decimal(1000)),), reasoning="paid for", raw_response="{}"
        )


def test_a_cycle_survives_the_database_stopping_and_starting_again(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(server.url)
    engine = make_engine(server.url, timeouts=(2, 5))
    uow_factory = SqlAlchemyUnitOfWorkFactory(engine)
    with uow_factory() as uow:
        uow.assets.upsert(Asset("BTC", "Bitcoin", "bitcoin"))
        uow.candles.upsert(candle_series("BTC", [50_000 + i for i in range(48)]))
        agents = [uow.agents.add(Agent(0, f"agent {i}", "fake", "outage")) for i in range(3)]
        uow.commit()
    clients = {a.id: OutageDuringDecision(server, stop=(i == 0)) for i, a in enumerate(agents)}

    started = time.monotonic()
    report = asyncio.run(
        run_cycle(
            uow_factory=uow_factory,
            clients=FakeClientFactory(clients),  # type: ignore[arg-type]
            cycle_time=CYCLE,
            rules=RaceRules(),
            interval="1h",
            snapshot_candles=24,
            agent_timeout_s=30,
            max_concurrency=4,
            record_retry_delays=(1, 2, 4, 8),
        )
    )

    assert (report.decided, report.failed) == (3, ()), report
    assert any("could not record" in r.getMessage() for r in caplog.records)  # the outage did hit the writes
    assert time.monotonic() - started < 30
    assert [c.asked for c in clients.values()] == [1, 1, 1]  # answers kept across the outage: nobody asked twice
    engine.dispose()
    engine = make_engine(server.url)
    with engine.connect() as connection:
        decisions = connection.execute(text("SELECT agent_id, reasoning, trade_count FROM decisions")).all()
        trades = connection.execute(text("SELECT agent_id FROM trades ORDER BY agent_id")).scalars().all()
        versions = connection.execute(text("SELECT agent_id, trade_count FROM portfolios")).all()
    engine.dispose()
    assert sorted((d[0], d[1], d[2]) for d in decisions) == [(a.id, "paid for", 1) for a in agents]
    assert trades == [a.id for a in agents]  # each decision with its trade and its portfolio change: whole
    assert sorted(versions) == [(a.id, 1) for a in agents]
