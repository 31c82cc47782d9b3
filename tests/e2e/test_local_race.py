"""End to end: the local race replays real 2024 candles through the same jobs the timers run, persists
everything, and serves a consistent leaderboard over the same HTTP routes as Azure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from shared.api.app import create_app
from shared.bootstrap import Container, set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, prepare, resume_time, run_simulated_cycles

START = datetime(2024, 3, 10, tzinfo=UTC)
CYCLES = 24


def _settings(db: Path) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
    )


def _run(container: Container, cycles: int) -> int:
    options = LocalRaceOptions(seconds_per_cycle=0, max_cycles=cycles, serve_http=False)
    return asyncio.run(run_simulated_cycles(container, options, asyncio.Event()))


async def _get(container: Container, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(lambda: container))
    async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
        return await client.get(path)


def get(container: Container, path: str) -> httpx.Response:
    return asyncio.run(_get(container, path))


@pytest.fixture
def race(tmp_path: Path) -> Container:
    container = prepare(_settings(tmp_path / "race.db"))
    yield container
    set_container(None)


def test_replayed_cycles_produce_a_consistent_leaderboard(race: Container) -> None:
    assert _run(race, CYCLES) == CYCLES

    board = get(race, "/api/leaderboard")
    assert board.status_code == 200
    rows = board.json()["items"]
    # Five baselines race; the ML agent (no ML service configured) and the two Groq agents (no key) are listed,
    # inactive, with their starting cash.
    assert len(rows) == 8
    assert sorted(r["name"] for r in rows if not r["active"]) == [
        "Custom ML",
        "Llama 3.1 8B (Groq)",
        "Llama 3.3 70B (Groq)",
    ]
    equities = [Decimal(r["equity"]) for r in rows]
    assert equities == sorted(equities, reverse=True), "leaderboard is ranked by equity"
    assert [r["rank"] for r in rows] == list(range(1, 9))
    [ml] = [r for r in rows if r["provider"] == "custom_ml"]
    assert ml["trades"] == 0

    by_name = {r["name"]: r for r in rows}
    hold = next(r for name, r in by_name.items() if "Hold" in name and "BTC" not in name)
    assert Decimal(hold["equity"]) == Decimal(100_000), "always-hold never trades"
    assert hold["trades"] == 0

    # Buy & hold BTC: one buy in the first cycle, marked at the BTC close of the last cycle.
    bh = next(r for name, r in by_name.items() if "BTC" in name)
    assert bh["trades"] == 1
    agent = get(race, f"/api/agents/{bh['agent_id']}").json()
    btc_qty = Decimal(agent["positions"]["BTC"])
    last_cycle = START + timedelta(hours=CYCLES - 1)
    # The mark at a cycle is the close of the last candle that closed by then (opened an hour earlier).
    last_open = (last_cycle - timedelta(hours=1)).isoformat().replace("+", "%2B")
    candles = get(race, f"/api/market/BTC/candles?end={last_open}&limit=1").json()["items"]
    last_close = Decimal(candles[-1]["close"])
    expected = (Decimal(agent["cash"]) + btc_qty * last_close).quantize(Decimal("0.00000001"))
    assert Decimal(bh["equity"]) == expected

    # Every agent decided in every cycle; each decision is tied to the snapshot it saw.
    decisions = get(race, f"/api/agents/{bh['agent_id']}/decisions?limit=100").json()
    assert decisions["total"] == CYCLES
    assert {len(d["snapshot_sha256"]) for d in decisions["items"]} == {64}
    equity = get(race, f"/api/agents/{bh['agent_id']}/equity").json()
    assert len(equity["points"]) == CYCLES
    assert Decimal(equity["points"][-1]["equity"]) == expected


def test_running_a_cycle_again_changes_nothing_and_the_race_resumes(race: Container) -> None:
    _run(race, 3)
    before = get(race, "/api/leaderboard").json()["items"]
    third = START + timedelta(hours=2)
    report = race.run_agents_job(third)
    assert report.decided == 0
    assert report.skipped == 5
    assert get(race, "/api/leaderboard").json()["items"] == before

    assert resume_time(race) == START + timedelta(hours=3), "the clock resumes after the last cycle"
    _run(race, 2)
    bh_id = before[0]["agent_id"]
    assert get(race, f"/api/agents/{bh_id}/decisions").json()["total"] == 5
