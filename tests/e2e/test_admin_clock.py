"""The admin job triggers run on the race's clock: with no `at` a job runs at the race's next due time, and a
time the race cannot honestly run at (ahead of its clock or data, before its latest cycle, 9999-12-31) is a
409 with nothing written. Checked on a replay race and on a live-clock race against a twin that never got the
calls: the rows afterwards are exactly the twin's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.api.app import create_app
from shared.bootstrap import Container, set_container
from shared.config import ApiSettings, ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, prepare, run_simulated_cycles
from tests.fakes import FakeClock

START = datetime(2024, 3, 10, tzinfo=UTC)
KEY = "clock-test-admin-key"
JOBS = ["market-data", "run-agents", "equity-snapshot"]
TABLES = {
    "candles": "symbol, interval, open_time, close",
    "decisions": "agent_id, cycle_time, status, orders, rejections, trade_count, snapshot_sha256",
    "trades": "agent_id, cycle_time, symbol, side, quantity, price, fee",
    "equity_snapshots": "agent_id, at, equity, cash, ordinal",
    "cycles": "cycle_time, snapshot_sha256, agents, decisions, trades",
    "portfolios": "agent_id, cash, fees_paid, trade_count",
    "positions": "agent_id, symbol, quantity, avg_cost",
}


def _race(db: Path) -> Container:
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
        api=ApiSettings(AdminKey=KEY),
    )
    return prepare(settings)


def _cycles(container: Container, cycles: int) -> None:
    options = LocalRaceOptions(seconds_per_cycle=0, max_cycles=cycles, serve_http=False)
    assert asyncio.run(run_simulated_cycles(container, options, asyncio.Event())) == cycles


def _rows(container: Container) -> dict[str, list[Any]]:
    engine = container.uow_factory.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(f"SELECT {cols} FROM {table} ORDER BY {cols}"))]
            for table, cols in TABLES.items()
        }


def _post(container: Container, job: str, at: str | None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(lambda: container))
        async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
            params = {"at": at} if at is not None else None
            return await client.post(f"/api/admin/jobs/{job}", params=params, headers={"x-admin-key": KEY})

    return asyncio.run(call())


@pytest.fixture
def races(tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    race, twin = _race(tmp_path / "race.db"), _race(tmp_path / "twin.db")
    _cycles(race, 3)
    _cycles(twin, 3)
    yield race, twin
    set_container(None)


REFUSED_REPLAY = {
    "past": (START - timedelta(days=30)).isoformat(),
    "before the latest cycle": (START + timedelta(hours=1)).isoformat(),
    "future": "2026-01-01T00:00:00Z",
    "far future": "9999-12-31T00:00:00Z",
}


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("when", sorted(REFUSED_REPLAY))
def test_replay_race_refuses_times_off_its_clock_and_writes_nothing(
    races: tuple[Container, Container], job: str, when: str
) -> None:
    race, _ = races
    before = _rows(race)

    response = _post(race, job, REFUSED_REPLAY[when])

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "job_time_refused"
    assert _rows(race) == before


def test_replay_race_default_times_are_its_next_due_times(races: tuple[Container, Container]) -> None:
    race, twin = races
    due = START + timedelta(hours=3)

    replies = {job: _post(race, job, None) for job in JOBS}

    assert {job: r.status_code for job, r in replies.items()} == dict.fromkeys(JOBS, 200), replies
    assert replies["market-data"].json()["at"] == due.isoformat().replace("+00:00", "Z")
    assert replies["run-agents"].json()["cycle_time"] == due.isoformat().replace("+00:00", "Z")
    assert replies["equity-snapshot"].json()["at"] == due.isoformat().replace("+00:00", "Z")  # marks follow
    _cycles(race, 1)  # the race goes on by itself from the cycle after the one run by hand
    _cycles(twin, 2)
    assert _rows(race) == _rows(twin)


def _live(race: Container, now: datetime) -> Container:
    settings = race.settings.model_copy(
        update={"market_data": race.settings.market_data.model_copy(update={"provider": "coingecko"})}
    )
    return replace(race, settings=settings, wall_clock=FakeClock(now))


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize(
    "at", [(START - timedelta(days=30)).isoformat(), "2024-03-10T04:00:00Z", "9999-12-31T00:00:00Z", None]
)
def test_live_race_runs_on_the_wall_clock(races: tuple[Container, Container], job: str, at: str | None) -> None:
    race, twin = races
    # Three cycles recorded (00:00-02:00); the wall clock says 03:07 but the 03:00 candle has not been ingested.
    live = _live(race, START + timedelta(hours=3, minutes=7))
    before = _rows(race)

    response = _post(live, job, at)

    if at is None and job == "market-data":  # ingests up to now: the candle closing at 03:00, as the timer would
        assert response.status_code == 200, response.text
        _cycles(twin, 1)
        assert _rows(race)["candles"] == _rows(twin)["candles"]
    elif at is None and job == "equity-snapshot":  # the latest cycle is marked already
        assert response.status_code == 200, response.text
        assert response.json()["report"]["written"] == 0
        assert _rows(race) == before
    else:  # the past, the future, and a cycle ahead of the race's data
        assert response.status_code == 409, response.text
        assert _rows(race) == before
