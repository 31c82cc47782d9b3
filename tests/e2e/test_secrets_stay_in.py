"""Secrets stay in: a race with a distinctive fake value for every secret, at DEBUG, whose every outbound call
fails (with an error body that echoes what it was sent, as a provider's 401 can), leaves no trace of any of
them in the logs, the database, the API's responses or its OpenAPI document. On PostgreSQL the race connects
as a role whose password is one of those secrets, in the connection string; then the database goes away
(the same URL, a port nobody listens on) and the failures it causes are scanned too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, make_url, select, text

from shared.adapters import telemetry
from shared.adapters.db.engine import make_engine
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.api.app import create_app
from shared.bootstrap import Container, bootstrap, set_container
from shared.config import Settings
from shared.local_race import prepare

SECRETS = {
    "Llama__ApiKey": "gsk_FAKE-LLAMA-7f3e9a1c5b",
    "OpenAI__ApiKey": "sk-FAKE-OPENAI-2b8d4e6f0a",
    "AzureOpenAI__ApiKey": "FAKE-AZURE-OPENAI-9c1a5e7b3d",
    "CoinGecko__ApiKey": "CG-FAKE-COINGECKO-3e7b1d9f5a",
    "CustomMlAgent__ApiKey": "FAKE-ML-KEY-8a4c2e6d0b",
    "Api__AdminKey": "FAKE-ADMIN-KEY-4d2f8a6c1e",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=5ec4e75a-fa4e-4b1d-9c3e-00000c0ffee1",
    "ConnectionStrings__TradingDb password": "FAKE-DB-PASSWORD-1d7c3a9e5f",
}
DB_ROLE = "race_secrets_test"
# What a search must not find: each secret whole and its distinctive middle (a masked echo like "sk-FAKE...0a").
NEEDLES = sorted({*SECRETS.values(), *(value[4:-4] for value in SECRETS.values())})


class EchoingFailure(BaseHTTPRequestHandler):
    """Every call fails with a 401 whose body repeats the request's headers and path, keys included."""

    def _fail(self) -> None:
        echoed = {"path": self.path, "headers": dict(self.headers.items())}
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {echoed}"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingFailure)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite, or a PostgreSQL database owned by a role that logs in with the fake password, in the URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}"
        return
    raw = os.environ.get("TEST_POSTGRES_URL")
    if not raw:
        pytest.fail("TEST_POSTGRES_URL is not set: run via `make test` or scripts/with-services.sh", pytrace=False)
    admin_url = make_url(raw).set(drivername="postgresql+psycopg")
    name = f"race_secrets_{uuid.uuid4().hex[:8]}"
    password = SECRETS["ConnectionStrings__TradingDb password"]
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {DB_ROLE}"))
        connection.execute(text(f"CREATE ROLE {DB_ROLE} LOGIN PASSWORD '{password}'"))
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {DB_ROLE}'))
    try:
        url = admin_url.set(username=DB_ROLE, password=password, database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f"DROP ROLE IF EXISTS {DB_ROLE}"))
        admin.dispose()


def _settings(database_url: str, failing_url: str) -> Settings:
    fast = {"MaxRetries": 0, "TimeoutSeconds": 2}
    return Settings(
        ConnectionStrings={"TradingDb": database_url},
        Database={"ConnectTimeoutSeconds": 2},
        MarketData={"Provider": "coingecko"},
        CoinGecko={"ApiKey": SECRETS["CoinGecko__ApiKey"], "BaseUrl": failing_url, **fast},
        Llama={"Provider": "groq", "ApiKey": SECRETS["Llama__ApiKey"], "BaseUrl": f"{failing_url}/v1", **fast},
        OpenAI={"ApiKey": SECRETS["OpenAI__ApiKey"], "BaseUrl": f"{failing_url}/v1", **fast},
        AzureOpenAI={
            "ApiKey": SECRETS["AzureOpenAI__ApiKey"],
            "Endpoint": failing_url,
            "Deployment": "gpt-4o-mini",
            **fast,
        },
        CustomMlAgent={"BaseUrl": failing_url, "ApiKey": SECRETS["CustomMlAgent__ApiKey"], **fast},
        Api={"AdminKey": SECRETS["Api__AdminKey"]},
        LOG_LEVEL="DEBUG",
        APPLICATIONINSIGHTS_CONNECTION_STRING=SECRETS["APPLICATIONINSIGHTS_CONNECTION_STRING"],
    )


@pytest.fixture
def race(database_url: str, failing_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    monkeypatch.setattr(telemetry, "_configured", False)  # never a real exporter in the test process
    container = prepare(_settings(database_url, failing_url))
    yield container
    if container.data_version is not None:
        container.data_version.close()
    container.queries.engine.dispose()  # type: ignore[attr-defined]
    set_container(None)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connections to it are refused


def _database_gone(container: Container) -> Container:
    """The same settings, credentials included, with the server's port now refusing connections."""
    url = make_url(container.settings.database_url).set(port=_closed_port())
    strings = container.settings.connection_strings.model_copy(
        update={"trading_db": url.render_as_string(hide_password=False)}
    )
    return bootstrap(container.settings.model_copy(update={"connection_strings": strings}))


def _database_text(container: Container) -> str:
    engine = container.queries.engine  # type: ignore[attr-defined]
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return "\n".join(
            repr(row) for table in metadata.sorted_tables for row in connection.execute(select(table)).all()
        )


async def _every_response(container: Container, *, with_agents: bool = True) -> str:
    app = create_app(lambda: container)
    admin = {"x-admin-key": SECRETS["Api__AdminKey"]}
    texts = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        agents = (await client.get("/api/agents")).json()["items"] if with_agents else [{"id": 1}]
        paths = [
            "/api/openapi.json",
            "/api/docs",
            "/api/health",
            "/api/leaderboard",
            "/api/agents",
            "/api/market/prices",
        ]
        paths += ["/api/market/BTC/candles", "/api/nope", "/api/agents/999999"]
        for agent in agents:
            paths += [f"/api/agents/{agent['id']}{tail}" for tail in ("", "/equity", "/trades", "/decisions")]
        for path in paths:
            response = await client.get(path)
            texts.append(f"{path} {response.status_code} {response.headers} {response.text}")
        for job in ("market-data", "run-agents", "equity-snapshot"):
            for headers in (admin, {"x-admin-key": "wrong"}, {}):
                response = await client.post(f"/api/admin/jobs/{job}", headers=headers)
                texts.append(f"{job} {response.status_code} {response.text}")
    return "\n".join(texts)


def test_no_secret_reaches_the_logs_the_database_or_the_api(race: Container, caplog: pytest.LogCaptureFixture) -> None:
    container = race
    with caplog.at_level(logging.DEBUG):
        start = datetime(2024, 1, 2, tzinfo=UTC)
        container.run_market_data_job(start)  # CoinGecko fails
        failing_market_data = container.market_data
        container.market_data = ReplayMarketDataProvider()  # the agents need candles to call their providers
        container.run_market_data_job(start)
        for hour in range(3):
            container.run_agents_job(container.cycle_time(start + timedelta(hours=hour)))
        container.run_equity_job(start + timedelta(hours=3))
        container.market_data = failing_market_data
        responses = asyncio.run(_every_response(container))
        outage_responses = ""
        if make_url(container.settings.database_url).get_backend_name() == "postgresql":
            outage = _database_gone(container)
            for job in (outage.run_market_data_job, outage.run_equity_job):
                with contextlib.suppress(Exception):  # they fail: what they log is what is scanned
                    job(start)
            outage_responses = asyncio.run(_every_response(outage, with_agents=False))
            assert re.search(r"/api/leaderboard 50[03] ", outage_responses), "the outage happened, and the API said so"
            assert "/api/openapi.json 200" in outage_responses
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logs = "\n".join(handler.format(record) + repr(record.__dict__) for record in caplog.records)
    database = _database_text(container)

    assert "provider" in database  # the providers were called, and failed
    everywhere = (("logs", logs), ("database", database), ("API", responses), ("API in the outage", outage_responses))
    for where, scanned in everywhere:
        found = [needle for needle in NEEDLES if needle in scanned]
        assert found == [], f"{where} holds {found}"
