"""Secrets stay in: a race with a distinctive fake value for every secret, at DEBUG, whose every outbound call
fails (with an error body that echoes what it was sent, as a provider's 401 can), leaves no trace of any of
them in the logs, the database, the API's responses or its OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, select

from shared.adapters import telemetry
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.api.app import create_app
from shared.bootstrap import Container, set_container
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
}
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


@pytest.fixture
def race(tmp_path: Path, failing_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    monkeypatch.setattr(telemetry, "_configured", False)  # never a real exporter in the test process
    fast = {"MaxRetries": 0, "TimeoutSeconds": 2}
    settings = Settings(
        ConnectionStrings={"TradingDb": f"sqlite:///{tmp_path / 'race.db'}"},
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
    container = prepare(settings)
    yield container
    set_container(None)


def _database_text(container: Container) -> str:
    engine = container.queries.engine  # type: ignore[attr-defined]
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return "\n".join(
            repr(row) for table in metadata.sorted_tables for row in connection.execute(select(table)).all()
        )


async def _every_response(container: Container) -> str:
    app = create_app(lambda: container)
    admin = {"x-admin-key": SECRETS["Api__AdminKey"]}
    texts = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        agents = (await client.get("/api/agents")).json()["items"]
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
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logs = "\n".join(handler.format(record) + repr(record.__dict__) for record in caplog.records)
    database = _database_text(container)

    assert "provider" in database  # the providers were called, and failed
    for where, text in (("logs", logs), ("database", database), ("API", responses)):
        found = [needle for needle in NEEDLES if needle in text]
        assert found == [], f"{where} holds {found}"
