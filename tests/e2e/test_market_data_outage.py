"""End to end: the market-data timer on live (stand-in) CoinGecko, through an outage and back.

CoinGecko up -> the timer stores a day of closed hourly candles. CoinGecko down (503s, then timeouts) -> each
run logs and reports the failure, the circuit breaker stops the calls, and the agents keep deciding on the
last good snapshot, each decision recording how stale its data was. CoinGecko up again -> the next run
backfills the hours it missed: no gap left, no duplicate, no bad price stored, and the candles are exactly the
bundled real ones the stand-in's prices derive from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.api.timers import handle_market_data_timer
from shared.bootstrap import Container, set_container
from shared.config import CoinGeckoSettings, ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare
from shared.services.seed import DEFAULT_ASSETS
from tests.coingecko.helpers import FakeTime, make_provider
from tests.coingecko.standin import CoinGeckoStandIn, Reply, running_standin, server_error

HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
SYMBOLS = sorted(a.symbol for a in DEFAULT_ASSETS)


@dataclass
class Timer:
    past_due: bool = False


@pytest.fixture
def standin() -> Iterator[CoinGeckoStandIn]:
    yield from running_standin()


@pytest.fixture
def race(tmp_path: Path, standin: CoinGeckoStandIn) -> Iterator[tuple[Container, FakeTime]]:
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{tmp_path / 'live.db'}"),
        market_data=MarketDataSettings(Provider="coingecko", BackfillHours=24),
        coingecko=CoinGeckoSettings(BaseUrl=standin.base_url),
    )
    container = prepare(settings)
    fake_time = FakeTime()  # retries and breaker delays cost no real time
    # The timeout leaves room for a loaded CI machine (a 0.3 s one let a healthy answer time out and be retried);
    # the slow phase of the outage answers well after it.
    container.market_data = make_provider(
        standin, fake_time, TimeoutSeconds=1.5, MaxRetries=2, BreakerFailures=3, BreakerResetSeconds=600
    )
    yield container, fake_time
    set_container(None)


def tick(container: Container, standin: CoinGeckoStandIn, fake_time: FakeTime) -> dict:  # type: ignore[type-arg]
    """Fifteen minutes pass, then the market-data timer fires."""
    standin.now += QUARTER
    fake_time.now += QUARTER.total_seconds()
    return handle_market_data_timer(Timer(), container, clock=lambda: standin.now)


def stored_candles(container: Container, symbol: str) -> list:  # type: ignore[type-arg]
    return container.queries.candles(symbol, "1h", start=None, end=None, limit=1000)


def test_the_timer_rides_out_an_outage_and_backfills_the_gap(
    race: tuple[Container, FakeTime], standin: CoinGeckoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    container, fake_time = race
    start = standin.now  # 2024-03-10 00:00

    # Up: a day of candles for the five assets, five calls.
    first = handle_market_data_timer(Timer(), container, clock=lambda: standin.now)
    assert first["stored"] == 5 * 24
    assert first["errors"] == {}
    assert len(standin.requests) == 5
    container.run_agents_job(start)

    # Down from 00:15 to 04:00: 503s, then answers slower than the timeout.
    standin.outage = server_error(503)
    outage_reports = [tick(container, standin, fake_time) for _ in range(8)]  # 00:15 .. 02:00
    standin.outage = Reply(200, [], delay_s=3.0)
    outage_reports += [tick(container, standin, fake_time) for _ in range(8)]  # 02:15 .. 04:00
    for report in outage_reports:
        assert report["stored"] == 0
    failing = [r for r in outage_reports if r["errors"]]
    assert all(set(r["errors"]) == set(SYMBOLS) for r in failing)
    assert any("CircuitOpenError" in e for r in failing for e in r["errors"].values())
    # each failing run records the closed hours it could not fetch: the gap the next good run fills
    last = outage_reports[-1]  # 04:00
    assert sorted(last["missing"], key=lambda m: m["symbol"]) == [
        {"symbol": s, "from": start.isoformat(), "to": (start + 3 * HOUR).isoformat()} for s in SYMBOLS
    ]
    # The breaker opened after 3 failed attempts; after that each run (15 min > the 10 min reset delay) spent
    # one probe, not 5 assets x 3 attempts; runs before any hour had closed made no call at all.
    assert len(standin.requests) - 5 <= 3 + len(outage_reports)
    assert "market data fetch failed for BTC" in caplog.text

    # The agents keep deciding on the last good snapshot and say how stale it is.
    stale_cycle = start + 3 * HOUR
    cycle = container.run_agents_job(stale_cycle)
    assert cycle.as_dict()["data_staleness_seconds"] == 3 * 3600
    agent = container.queries.agent_summaries(starting_cash=Decimal(100_000))[0].agent
    [latest, *_] = container.queries.decisions(agent.id, limit=1, offset=0).items
    assert (latest.cycle_time, latest.data_staleness_seconds) == (stale_cycle, 3 * 3600)

    # Up again, with junk in the answers: an off-grid row of impossible prices and a repeated row.
    standin.outage = None

    def junk(rows: list[list[object]]) -> list[list[object]]:
        off_grid = [int((start + HOUR + timedelta(minutes=7)).timestamp() * 1000), 0, -5, 10**9, "NaN"]  # JSON NaN
        return [*rows[:3], rows[2], off_grid, *rows[3:]]

    standin.edit_rows("ethereum", junk)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fake_time.now += 600  # the breaker's reset delay has passed: the next call probes
        recovered = tick(container, standin, fake_time)  # 04:15
    assert recovered["errors"] == {}
    assert recovered["stored"] == 5 * 4  # 00:00, 01:00, 02:00, 03:00 for each asset
    assert recovered["gaps"] == []
    assert recovered["missing"] == []
    assert "dropped candle ETH 2024-03-10T00:37:00+00:00: close time not on a 30m boundary" in caplog.text
    off_grid = {"symbol": "ETH", "open_time": "2024-03-10T00:37:00+00:00", "reason": "close time not on a 30m boundary"}
    assert off_grid in recovered["dropped"]

    # One more run: nothing new has closed, nothing is written twice.
    assert tick(container, standin, fake_time)["stored"] == 0

    replay = ReplayMarketDataProvider()
    for symbol in SYMBOLS:
        candles = stored_candles(container, symbol)
        opens = [c.open_time for c in candles]
        assert opens == [start - 24 * HOUR + i * HOUR for i in range(28)], f"{symbol}: gap or duplicate"
        expected = replay.fetch_candles(
            [a for a in DEFAULT_ASSETS if a.symbol == symbol], start=opens[0], end=opens[-1] + HOUR
        )
        prices = [(c.open, c.high, c.low, c.close) for c in candles]
        assert prices == [(c.open, c.high, c.low, c.close) for c in expected], f"{symbol}: not the real prices"


def test_a_live_answer_of_a_granularity_the_race_cannot_use_is_loud_down_to_api_health(
    race: tuple[Container, FakeTime], standin: CoinGeckoStandIn
) -> None:
    import asyncio

    import httpx

    from shared.api.app import create_app

    container, fake_time = race
    container.market_data = make_provider(standin, fake_time, BreakerFailures=10)
    standin.granularity_ms = 8 * 30 * 60 * 1000  # 4-hour rows for the 1h race: nothing honest can be built

    report = handle_market_data_timer(Timer(), container, clock=lambda: standin.now)

    assert report["stored"] == 0
    assert sorted(report["errors"]) == SYMBOLS
    assert all("CoinGecko answered 4h candles" in e for e in report["errors"].values())
    assert {d["reason"] for d in report["dropped"]} == {"4h candles cannot make 1h candles"}

    async def health() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(lambda: container))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/api/health")

    response = asyncio.run(health())
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["market_data"] == "degraded"
    assert "no usable candles for" in body["details"]["market_data"]
