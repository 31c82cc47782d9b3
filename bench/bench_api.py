"""API latency over a year of hourly equity snapshots for 20 agents (175,200 rows), through real HTTP.

Serves the production HTTP app (`function_app.build_http_app`, configured from the environment as in Azure)
with uvicorn on loopback in its own process, so the load generator's threads and the test data never share
the server's interpreter; loads it with sequential keep-alive requests and with 4 concurrent clients, and
prints p50/p99 for `GET /api/leaderboard` and `GET /api/agents/{id}/equity` (500 points). It also counts SQL
statements per request (no N+1) and prints SQLite's query plan for each (every query served by an index).
Target: p99 under 50 ms.

Usage: bench/bench_api.py [--requests N] [--postgres]   (--postgres uses TEST_POSTGRES_URL, as `make bench` sets)
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import event, insert, text

from shared.adapters.db.migrate import upgrade
from shared.adapters.db.tables import EQUITY
from shared.bootstrap import Container, bootstrap
from shared.config import ConnectionStrings, Settings
from shared.services.seed import DEFAULT_BASELINE_AGENTS, seed

AGENTS = 20
HOURS = 8_760
START = datetime(2024, 1, 1, tzinfo=UTC)


def build_database(url: str) -> Container:
    settings = Settings(connection_strings=ConnectionStrings(trading_db=url))
    upgrade(url)
    container = bootstrap(settings)
    agents = tuple(
        replace(DEFAULT_BASELINE_AGENTS[i % len(DEFAULT_BASELINE_AGENTS)], name=f"Agent {i:02d}") for i in range(AGENTS)
    )
    seed(uow_factory=container.uow_factory, rules=settings.race.rules(), agents=agents)
    rng = random.Random(7)
    with container.uow_factory() as uow:
        ids = [a.id for a in uow.agents.list()]
    engine = container.queries.engine  # type: ignore[attr-defined]
    table = EQUITY
    with engine.begin() as connection:
        for agent_id in ids:
            equity, peak, worst = Decimal(100_000), Decimal(100_000), Decimal(0)
            rows = []
            for hour in range(HOURS):
                equity = (equity * Decimal(1 + rng.gauss(0, 0.004))).quantize(Decimal("0.00000001"))
                peak = max(peak, equity)
                worst = max(worst, ((peak - equity) / peak).quantize(Decimal("0.00000001")))
                rows.append(
                    {
                        "agent_id": agent_id,
                        "at": START + timedelta(hours=hour),
                        "equity": equity,
                        "cash": Decimal(0),
                        "peak_equity": peak,
                        "max_drawdown": worst,
                        "ordinal": hour + 1,
                    }
                )
            connection.execute(insert(table), rows)
    return container


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def load(base: str, path: str | Callable[[int], str], requests: int, workers: int) -> list[float]:
    """`path` may be a function of the request's number: a distinct URL each time, so no cached answer."""
    counter = iter(range(10**9))

    def one_client(count: int) -> list[float]:
        times = []
        with httpx.Client(base_url=base) as client:
            for _ in range(count):
                url = path(next(counter)) if callable(path) else path
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        return times

    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(one_client, [requests // workers] * workers)
    return [t for chunk in results for t in chunk]


def explain(container: Container, paths: dict[str, str]) -> None:
    """Statements per request and their query plans, from the same app served in this process."""
    from fastapi.testclient import TestClient

    from shared.api.app import create_app

    engine = container.queries.engine  # type: ignore[attr-defined]
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    with TestClient(create_app(lambda: container)) as client:
        for name, path in paths.items():
            captured.clear()
            client.get(path)
            print(f"  {name}: {len(captured)} SQL statement(s) per request")
            if engine.dialect.name == "sqlite":
                with engine.connect() as connection:
                    for statement, parameters in list(captured):
                        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                        for row in plan:
                            print(f"      plan: {row[-1]}")
    event.remove(engine, "before_cursor_execute", capture)


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    """The production HTTP app on uvicorn, in its own process, configured from the environment."""
    env = os.environ | {"ConnectionStrings__TradingDb": url, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "uvicorn", "--factory", "function_app:build_http_app"]
    server = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code < 500:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the API server did not start within 60 s")


def fresh_database(name: str, *, postgres: bool) -> str:
    """An empty database for a bench: `name` recreated on TEST_POSTGRES_URL's server, or a new SQLite file."""
    if postgres:
        url = os.environ["TEST_POSTGRES_URL"]
        with __import__("sqlalchemy").create_engine(url, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            c.execute(text(f"CREATE DATABASE {name}"))
        return url.rsplit("/", 1)[0] + f"/{name}"
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix=name.replace('_', '-') + '-')) / 'race.db'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    url = fresh_database("bench_api", postgres=args.postgres)
    started = time.perf_counter()
    container = build_database(url)
    print(
        f"database: {container.queries.engine.dialect.name}; {AGENTS} agents x {HOURS} hourly snapshots "  # type: ignore[attr-defined]
        f"built in {time.perf_counter() - started:.1f} s"
    )

    port = free_port()
    server = serve(url, port)
    base = f"http://127.0.0.1:{port}"
    paths: dict[str, str | Callable[[int], str]] = {
        "GET /api/leaderboard": "/api/leaderboard",
        "GET /api/agents/7/equity (500 points)": "/api/agents/7/equity?max_points=500",
        # A different range on every request: never a cached curve, the full count + thinning query each time.
        "  ... a new range each request": lambda n: (
            "/api/agents/7/equity?max_points=500&end="
            + (START + timedelta(hours=HOURS - 1 - n % 500)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    }
    try:
        with httpx.Client(base_url=base) as client:
            points = len(client.get("/api/agents/7/equity?max_points=500").json()["points"])
        print(f"equity curve returns {points} points")
        for name, path in paths.items():
            load(base, path, 20, 1)  # warm-up
            for workers in (1, 4):
                samples = load(base, path, args.requests, workers)
                print(
                    f"{name:40s} clients={workers}: p50 {statistics.median(samples) * 1000:6.2f} ms  "
                    f"p99 {percentile(samples, 99) * 1000:6.2f} ms  ({len(samples)} requests)"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)
    explain(container, {k: v for k, v in paths.items() if isinstance(v, str)})


if __name__ == "__main__":
    main()
