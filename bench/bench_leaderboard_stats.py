"""The statistics over a year of hourly cycles x 20 agents: computed once, then served by the API.

Builds a database with 20 agents x 8,760 hourly equity marks (175,200 rows, bulk-inserted as bench_api.py
does), a decision per agent and cycle (175,200, some with a stated confidence, an inference cost and a latency)
and a trade every 12 hours per agent; then
  1. computes the statistics once, as the equity job does after a cycle lands, and prints each step's time
     (read the history, compute with the bootstrap of 20 agents x 4 controls, store);
  2. serves the production HTTP app with uvicorn in its own process (bench_api.py's `serve`) and prints p50/p99
     of `GET /api/leaderboard` (with the headline statistics), `GET /api/agents/{id}/stats` and `GET /api/race`,
     with 1 and 4 keep-alive clients, and the first leaderboard request after a new set has landed (the stored
     JSON decoded again). Target: p99 under 50 ms.

Usage: bench/bench_leaderboard_stats.py [--requests N] [--postgres]   (--postgres uses TEST_POSTGRES_URL)
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert, select

from bench.bench_api import HOURS, START, explain, free_port, fresh_database, load, percentile, serve
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.models import DecisionRow
from shared.adapters.db.repositories import DECISIONS, EQUITY, TRADES
from shared.bootstrap import Container, bootstrap
from shared.config import ConnectionStrings, Settings
from shared.domain.model import Agent
from shared.domain.race_statistics import compute_race_statistics
from shared.services.race_statistics import control_ids, periods_per_year
from shared.services.seed import CONTROL_MODELS, DEFAULT_BASELINE_AGENTS, seed

AGENTS = 20

TRADE_EVERY_HOURS = 12


def roster() -> tuple[Agent, ...]:
    """The issue's shape: the four seeded controls and 16 other agents (strategies under other names)."""
    controls = tuple(a for a in DEFAULT_BASELINE_AGENTS if a.model in CONTROL_MODELS)
    others = [a for a in DEFAULT_BASELINE_AGENTS if a.model not in CONTROL_MODELS]
    racers = tuple(replace(others[i % len(others)], name=f"Agent {i:02d}") for i in range(AGENTS - len(controls)))
    return controls + racers


def build_database(url: str) -> Container:
    """A year of hourly marks per agent, bulk-inserted (a random walk of 0.4% per hour, as bench_api.py)."""
    settings = Settings(connection_strings=ConnectionStrings(trading_db=url))
    upgrade(url)
    container = bootstrap(settings)
    seed(uow_factory=container.uow_factory, rules=settings.race.rules(), agents=roster())
    rng = random.Random(7)
    with container.uow_factory() as uow:
        ids = [a.id for a in uow.agents.list()]
    engine = container.queries.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for agent_id in ids:
            equity, peak, worst = Decimal(100_000), Decimal(100_000), Decimal(0)
            rows = []
            for hour in range(HOURS):
                equity = (equity * Decimal(1 + rng.gauss(0, 0.004))).quantize(Decimal("0.00000001"))
                peak = max(peak, equity)
                worst = max(worst, ((peak - equity) / peak).quantize(Decimal("0.00000001")))
                cash = equity if hour % 48 < 12 else Decimal(0)  # out of the market a quarter of the time
                rows.append(
                    {
                        "agent_id": agent_id,
                        "at": START + timedelta(hours=hour),
                        "equity": equity,
                        "cash": cash,
                        "peak_equity": peak,
                        "max_drawdown": worst,
                        "ordinal": hour + 1,
                    }
                )
            connection.execute(insert(EQUITY), rows)
    return container


def add_decisions_and_trades(container: Container) -> tuple[int, int]:
    """A decision per agent and cycle and a trade (BTC, alternately bought and sold) every 12 hours."""
    engine = container.queries.engine  # type: ignore[attr-defined]
    rng = random.Random(11)
    with container.uow_factory() as uow:
        ids = [a.id for a in uow.agents.list()]
    decisions = trades = 0
    with engine.begin() as connection:
        for agent_id in ids:
            llm_like = agent_id % 2 == 0  # half the agents state a confidence and pay for inference
            rows: list[dict[str, Any]] = []
            for hour in range(HOURS):
                traded = hour % TRADE_EVERY_HOURS == 0
                hold = "timeout" if llm_like and hour % 97 == 0 else None
                at = START + timedelta(hours=hour)
                rows.append(
                    {
                        "agent_id": agent_id,
                        "cycle_time": at,
                        "status": "hold_fallback" if hold else "ok",
                        "reasoning": "bench",
                        "confidence": round(rng.random(), 2) if llm_like else None,
                        "hold_reason": hold,
                        "orders": [{"symbol": "BTC", "side": "BUY", "quantity": "0.01", "notional_usd": None}]
                        if traded
                        else [],
                        "rejections": [],
                        "trade_count": 1 if traded else 0,
                        "snapshot_sha256": "ab" * 32,
                        "data_staleness_seconds": 0.0,
                        "latency_ms": 300 + rng.random() * 900 if llm_like else None,
                        "cost_usd": Decimal("0.00012") if llm_like else None,
                        "decided_at": at,
                    }
                )
            connection.execute(insert(DECISIONS), rows)
            decisions += len(rows)
            traded_ids = connection.execute(
                select(DecisionRow.id, DecisionRow.cycle_time)
                .where(DecisionRow.agent_id == agent_id, DecisionRow.trade_count > 0)
                .order_by(DecisionRow.cycle_time)
            ).all()
            trade_rows = []
            for n, (decision_id, cycle_time) in enumerate(traded_ids):
                price = Decimal(40_000 + rng.randint(-4_000, 4_000))
                trade_rows.append(
                    {
                        "decision_id": decision_id,
                        "agent_id": agent_id,
                        "cycle_time": cycle_time,
                        "symbol": "BTC",
                        "side": "BUY" if n % 2 == 0 else "SELL",
                        "quantity": Decimal("0.01"),
                        "price": price,
                        "notional": price / 100,
                        "fee": price / 100_000,
                    }
                )
            connection.execute(insert(TRADES), trade_rows)
            trades += len(trade_rows)
    return decisions, trades


def compute_once(container: Container) -> None:
    """What the equity job runs after a cycle lands, step by step."""
    repository = container.statistics
    assert repository is not None
    race = container.settings.race
    started = time.perf_counter()
    history = repository.race_history()
    loaded = time.perf_counter()
    controls = control_ids(history.agents)
    figures = compute_race_statistics(
        history.inputs,
        control_ids=controls,
        starting_cash=race.starting_cash,
        periods_per_year=periods_per_year(race.cycle_minutes),
    )
    computed = time.perf_counter()
    assert history.latest_mark is not None
    repository.save(computed_for=history.latest_mark, computed_at=datetime.now(UTC), statistics=figures)
    stored = time.perf_counter()
    comparisons = sum(len(s.versus_controls) for s in figures.values())
    marks = sum(len(i.marks) for i in history.inputs)
    print(
        f"statistics of {len(figures)} agents ({marks:,} marks, {len(controls)} controls, {comparisons} bootstrap "
        f"comparisons x 1,000 replications):\n"
        f"  read history {loaded - started:6.2f} s   compute {computed - loaded:6.2f} s   "
        f"store {stored - computed:6.3f} s   total {stored - started:6.2f} s  (once per cycle, never per request)"
    )


def after_new_set(container: Container, base: str, rounds: int) -> list[float]:
    """The first leaderboard request after each new set lands: the server decodes the stored JSON again."""
    repository = container.statistics
    assert repository is not None
    stored = repository.latest()
    assert stored is not None
    times = []
    with httpx.Client(base_url=base) as client:
        for n in range(rounds):
            landed = stored.computed_at + timedelta(seconds=n + 1)
            repository.save(computed_for=stored.computed_for, computed_at=landed, statistics=stored.by_agent)
            started = time.perf_counter()
            response = client.get("/api/leaderboard")
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    url = fresh_database("bench_stats", postgres=args.postgres)
    started = time.perf_counter()
    container = build_database(url)
    decisions, trades = add_decisions_and_trades(container)
    dialect = container.queries.engine.dialect.name  # type: ignore[attr-defined]
    print(
        f"database: {dialect}; {AGENTS} agents x {HOURS} hourly marks, {decisions:,} decisions, {trades:,} trades, "
        f"built in {time.perf_counter() - started:.1f} s"
    )
    compute_once(container)

    port = free_port()
    server = serve(url, port)
    base = f"http://127.0.0.1:{port}"
    paths = {
        "GET /api/leaderboard (headline statistics)": "/api/leaderboard",
        "GET /api/agents/7/stats": "/api/agents/7/stats",
        "GET /api/race (version)": "/api/race",
    }
    try:
        with httpx.Client(base_url=base) as client:
            board = client.get("/api/leaderboard").json()
            assert all(e["sharpe"] is not None for e in board["items"]), "every agent has a Sharpe"
        for name, path in paths.items():
            load(base, path, 20, 1)  # warm-up
            for workers in (1, 4):
                samples = load(base, path, args.requests, workers)
                print(
                    f"{name:44s} clients={workers}: p50 {statistics.median(samples) * 1000:6.2f} ms  "
                    f"p99 {percentile(samples, 99) * 1000:6.2f} ms  ({len(samples)} requests)"
                )
        fresh = after_new_set(container, base, 30)
        print(
            f"{'first leaderboard after a new set landed':44s} clients=1: "
            f"p50 {statistics.median(fresh) * 1000:6.2f} ms  max {max(fresh) * 1000:6.2f} ms  ({len(fresh)} sets)"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    explain(container, paths)


if __name__ == "__main__":
    main()
