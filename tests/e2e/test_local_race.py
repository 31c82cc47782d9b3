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
from shared.bootstrap import Container, bootstrap, set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, main, prepare, resume_time, run_simulated_cycles

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
    # Six baselines race (the equal-weight control among them); the ML agent (no ML service configured) and
    # the two Groq agents (no key) are listed, inactive, with their starting cash.
    assert len(rows) == 9
    assert sorted(r["name"] for r in rows if not r["active"]) == [
        "Custom ML",
        "Llama 3.1 8B (Groq)",
        "Llama 3.3 70B (Groq)",
    ]
    equities = [Decimal(r["equity"]) for r in rows]
    assert equities == sorted(equities, reverse=True), "leaderboard is ranked by equity"
    assert [r["rank"] for r in rows] == list(range(1, 10))
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
    assert report.skipped == 6
    assert get(race, "/api/leaderboard").json()["items"] == before

    assert resume_time(race) == START + timedelta(hours=3), "the clock resumes after the last cycle"
    _run(race, 2)
    bh_id = before[0]["agent_id"]
    assert get(race, f"/api/agents/{bh_id}/decisions").json()["total"] == 5


def _race_env(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    monkeypatch.setenv("ConnectionStrings__TradingDb", f"sqlite:///{db}")
    monkeypatch.setenv("MarketData__ReplayStart", START.isoformat())


def test_fast_forward_runs_the_race_up_to_a_time_then_the_live_replay_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "race.db"
    _race_env(monkeypatch, db)
    main(["--fast-forward", "2024-03-12T06:00", "--no-http", "--no-ml", "--cycles", "0"])
    out = capsys.readouterr().out
    assert "Fast-forwarding the race from 2024-03-10 00:00 to 2024-03-12 06:00 UTC" in out
    assert "2024-03-16 23:00" not in out
    assert "2024-03-12 05:00 UTC | fast-forward: 54 cycles, 324 decisions," in out  # 54 = 2 days + 6 hours
    assert "Fast-forwarded 54 cycles" in out

    main(["--no-http", "--no-ml", "--cycles", "2"])  # the live replay resumes where the fast-forward stopped
    assert "2024-03-12 06:00 UTC | decisions 6" in capsys.readouterr().out
    container = bootstrap(_settings(db))
    assert resume_time(container) == datetime(2024, 3, 12, 8, tzinfo=UTC)
    board = get(container, "/api/leaderboard").json()["items"]
    assert sum(row["trades"] for row in board) > 0
    equity = get(container, f"/api/agents/{board[0]['agent_id']}/equity").json()
    assert len(equity["points"]) == 56  # one mark a cycle, fast-forwarded or live
    set_container(None)


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("next tuesday", "argument --fast-forward: not a date or time: 'next tuesday'"),
        ("2024-03-09", "nothing to fast-forward: the race already stands at 2024-03-10T00:00:00+00:00"),
    ],
)
def test_fast_forward_refuses_a_bad_or_past_time_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], until: str, message: str
) -> None:
    db = tmp_path / "race.db"
    _race_env(monkeypatch, db)
    with pytest.raises(SystemExit) as exit_info:
        main(["--fast-forward", until, "--no-http", "--no-ml", "--cycles", "0"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    if db.exists():
        assert resume_time(bootstrap(_settings(db))) == START  # no cycle was recorded


def test_fast_forward_stops_where_the_bundled_candles_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the last bundled candle every cycle would decide on the same stale prices: the fast-forward stops at
    the cycle that sees the last one, and says so."""
    db = tmp_path / "race.db"
    monkeypatch.setenv("ConnectionStrings__TradingDb", f"sqlite:///{db}")
    monkeypatch.setenv("MarketData__ReplayStart", "2024-12-29T00:00:00+00:00")
    main(["--fast-forward", "2030-01-01", "--no-http", "--no-ml", "--cycles", "0"])
    out = capsys.readouterr().out
    assert "The bundled candles end (the last closes at 2024-12-30 02:00 UTC)" in out
    container = bootstrap(_settings(db))
    assert resume_time(container) == datetime(2024, 12, 30, 3, tzinfo=UTC)

    with pytest.raises(SystemExit) as exit_info:
        main(["--fast-forward", "2030-01-01", "--no-http", "--no-ml", "--cycles", "0"])
    assert exit_info.value.code == 2
    assert "past the end of the bundled candles" in capsys.readouterr().err
    set_container(None)


def test_race_status_counts_the_recorded_cycles(race: Container) -> None:
    assert get(race, "/api/race").json()["cycles"] == 0
    assert _run(race, 3) == 3
    body = get(race, "/api/race").json()
    assert body["cycles"] == 3
    assert body["first_cycle"] == "2024-03-10T00:00:00Z"
    assert body["last_cycle"] == "2024-03-10T02:00:00Z"
