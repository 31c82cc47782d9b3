"""Fixtures for ml_service: the committed model (loaded once), request bodies cut from the bundled 2024 candles,
the app driven in-process (lifespan included), and the real Redis server from scripts/with-services.sh."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ml_service.app import create_app
from ml_service.config import ServiceSettings
from ml_service.data import CandleSeries, load_all
from ml_service.model import ModelBundle, load_bundle

API_KEY = "test-ml-api-key-0123456789"
AUTH = {"X-API-Key": API_KEY}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def bundle() -> ModelBundle:
    return load_bundle()


@pytest.fixture(scope="session")
def series() -> dict[str, CandleSeries]:
    return load_all()


def decision_body(
    series: dict[str, CandleSeries],
    *,
    end: int = 2000,
    count: int = 48,
    symbols: tuple[str, ...] = ("BNB", "BTC", "ETH", "SOL", "XRP"),
    cash: float = 100_000.0,
    positions: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A valid request: `count` candles per asset ending just before candle `end`, cycle at candle `end`'s open."""
    assets = []
    for symbol in symbols:
        s = series[symbol]
        assets.append(
            {
                "symbol": symbol,
                "candles": [
                    {"open_time": t.isoformat(), "open": r[0], "high": r[1], "low": r[2], "close": r[3], "volume": r[4]}
                    for t, r in zip(s.open_times[end - count : end], s.rows[end - count : end], strict=True)
                ],
            }
        )
    return {
        "agent_id": 7,
        "cycle_time": series["BTC"].open_times[end].isoformat(),
        "interval": "1h",
        "assets": assets,
        "portfolio": {"cash": cash, "positions": positions or {}},
        "rules": {"fee_bps": 10, "slippage_bps": 5, "min_notional_usd": 10, "max_position_fraction": 1},
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def new_key() -> str:
    return f"test-{uuid.uuid4().hex}"


def headers(key: str | None = None, **extra: str) -> dict[str, str]:
    out = {**AUTH, "Content-Type": "application/json"}
    if key is not None:
        out["Idempotency-Key"] = key
    return {**out, **extra}


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(MlService__ApiKey=API_KEY, **values)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (model load, Redis client) and talk to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ml-service") as client:
            yield client


@pytest.fixture
def make_app(bundle: ModelBundle) -> Any:
    def make(**values: Any) -> FastAPI:
        return create_app(settings(**values), bundle=bundle)

    return make


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server that scripts/with-services.sh starts. Missing is a failure, never a skip: these tests are
    the evidence that idempotency works across replicas."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.fail("TEST_REDIS_URL is not set: run the tests through scripts/with-services.sh (make test)")
    return url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server this test may stop and restart (the shared one must stay up for the others)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: scripts/with-services.sh installs it")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        pytest.fail("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
