"""Database calls are bounded: `Database__StatementTimeoutSeconds` cancels a statement on PostgreSQL, the
connect timeout reaches every driver, and a hung server (every PostgreSQL process SIGSTOPped: the port still
accepts, nothing answers) fails a statement, the pool's pre-ping and a new connection within their deadlines
(`shared.adapters.db.hang_guard`), after which the same engine works again once the server is thawed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from shared.adapters.db.engine import make_engine, timeout_connect_args
from shared.adapters.db.retry import is_transient_db_error
from shared.api.app import create_app
from shared.bootstrap import bootstrap
from shared.config import ConnectionStrings, Settings
from tests.integration.db.conftest import PostgresDatabases
from tests.integration.db.pg_server import PostgresServer

CONNECT_S, STATEMENT_S = 2, 3


@pytest.mark.postgres
def test_a_statement_past_the_timeout_fails_within_it(postgres_databases: PostgresDatabases) -> None:
    engine = make_engine(postgres_databases.admin_url, timeouts=(5, 1))
    try:
        started = time.monotonic()
        with engine.connect() as connection, pytest.raises(OperationalError, match="statement timeout") as caught:
            connection.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5
        assert is_transient_db_error(caught.value)  # the job is run again, as for an outage
    finally:
        engine.dispose()


def test_the_timeouts_come_from_the_settings() -> None:
    database = Settings(Database={"ConnectTimeoutSeconds": 3, "StatementTimeoutSeconds": 7}).database
    assert (database.connect_timeout_seconds, database.statement_timeout_seconds) == (3, 7)
    assert Settings().database.statement_timeout_seconds == 30
    assert timeout_connect_args("postgresql", 3, 7) == {
        "connect_timeout": 3,
        "options": "-c statement_timeout=7000 -c lock_timeout=7000",
    }
    assert timeout_connect_args("mssql", 3, 7) == {"timeout": 3}
    assert timeout_connect_args("sqlite", 3, 7) == {}


def _fails_within(seconds: float, call: Callable[[], Any]) -> float:
    started = time.monotonic()
    with pytest.raises(OperationalError) as caught:
        call()
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.1f} s, bound {seconds} s"
    assert is_transient_db_error(caught.value)  # retried by the jobs like any outage
    return took


def _select_one(engine: Engine) -> Any:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar_one()


@pytest.mark.postgres
def test_a_hung_server_fails_every_call_within_its_deadline(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(server.url, timeouts=(CONNECT_S, STATEMENT_S))
    fresh = make_engine(server.url, timeouts=(CONNECT_S, STATEMENT_S))
    try:
        assert _select_one(engine) == 1  # an idle pooled connection, its backend about to freeze
        server.freeze()
        # The pool's pre-ping hangs (cut at the connect timeout), then the new connection hangs in its
        # handshake (psycopg's connect_timeout).
        pooled = _fails_within(2 * CONNECT_S + 2, lambda: _select_one(engine))
        assert any("the pool's ping got no answer" in r.getMessage() for r in caplog.records)
        first_connect = _fails_within(CONNECT_S + 2, lambda: _select_one(fresh))
        code, database, health_s = asyncio.run(_health(server.url))
        assert (code, database) == (503, "unavailable")
        assert health_s < 2 * CONNECT_S + 2
        server.thaw()
        with engine.connect() as checked_out:  # pinged while the server runs; its next statement meets the freeze
            assert checked_out.execute(text("SELECT 1")).scalar_one() == 1
            server.freeze()
            in_flight = _fails_within(STATEMENT_S + 2, lambda: checked_out.execute(text("SELECT 1")))
        assert any("a statement got no answer" in r.getMessage() for r in caplog.records)
        print(
            f"hung server: pooled (pre-ping + reconnect) {pooled:.1f} s, new connection {first_connect:.1f} s, "
            f"/api/health 503 in {health_s:.1f} s, statement in flight {in_flight:.1f} s"
        )
    finally:
        server.thaw()
    assert _select_one(engine) == 1  # the engine heals by itself: the cut connections were invalidated
    assert _select_one(fresh) == 1
    engine.dispose()
    fresh.dispose()


async def _health(url: str) -> tuple[int, str, float]:
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=url),
        Database={"ConnectTimeoutSeconds": CONNECT_S, "StatementTimeoutSeconds": STATEMENT_S},
    )
    container = bootstrap(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(lambda: container))
        async with httpx.AsyncClient(transport=transport, base_url="http://race", timeout=60) as client:
            started = time.monotonic()
            response = await client.get("/api/health")
            took = time.monotonic() - started
        return response.status_code, response.json()["checks"]["database"], took
    finally:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
