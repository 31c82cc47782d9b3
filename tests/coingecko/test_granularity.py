"""Whatever CoinGecko answers, ingest stores what maps honestly onto the race's interval and says loudly what it
could not use: each candle length CoinGecko can answer with, prices as strings, one bad row among good ones, a
job for a past time, and an answer of which nothing is usable (job error, `dropped`, health degraded, a metric)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.adapters.health import market_data_check
from shared.adapters.resilience import BreakerState
from shared.services.ingest import IngestReport, ingest_market_data
from shared.services.seed import DEFAULT_ASSETS
from tests.coingecko.helpers import FakeTime, make_provider
from tests.coingecko.standin import HALF_HOUR_MS, CoinGeckoStandIn, Row
from tests.fakes import FakeUnitOfWorkFactory

HOUR = timedelta(hours=1)
SYMBOLS = sorted(a.symbol for a in DEFAULT_ASSETS)


class RecordingMetrics:
    def __init__(self) -> None:
        self.dropped: list[tuple[str, str, int]] = []
        self.unusable: list[tuple[str, str]] = []

    def candles_dropped(self, provider: str, symbol: str, count: int) -> None:
        self.dropped.append((provider, symbol, count))

    def fetch_unusable(self, provider: str, symbol: str) -> None:
        self.unusable.append((provider, symbol))


def seeded_uow() -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*DEFAULT_ASSETS)
    return uow


def run(
    uow: FakeUnitOfWorkFactory,
    provider: object,
    *,
    now: datetime,
    interval: str = "1h",
    backfill: timedelta = 12 * HOUR,
    metrics: RecordingMetrics | None = None,
) -> IngestReport:
    return ingest_market_data(
        uow_factory=uow,
        provider=provider,
        now=now,
        interval=interval,
        backfill=backfill,
        metrics=metrics,  # type: ignore[arg-type]
    )


def stored(uow: FakeUnitOfWorkFactory, symbol: str, interval: str = "1h") -> list[datetime]:
    return sorted(uow.state.candles.get((symbol, interval), {}))


@pytest.mark.parametrize(
    ("interval", "granularity", "backfill", "per_asset"),
    [
        ("30m", "30m", 12 * HOUR, 24),
        ("1h", "30m", 12 * HOUR, 12),
        ("1h", "1h", 12 * HOUR, 12),  # the plan (or `interval=hourly`) answers days=1 with hourly rows
        ("4h", "30m", 12 * HOUR, 3),
        ("4h", "1h", 12 * HOUR, 3),
        ("4h", "4h", 96 * HOUR, 24),
        ("1d", "1h", 48 * HOUR, 2),
        ("1d", "4h", 96 * HOUR, 4),
    ],
)
def test_each_candle_length_coingecko_can_answer_is_mapped_onto_the_race_interval(
    standin: CoinGeckoStandIn, fake_time: FakeTime, interval: str, granularity: str, backfill: timedelta, per_asset: int
) -> None:
    standin.granularity_ms = {"30m": 1, "1h": 2, "4h": 8}[granularity] * HALF_HOUR_MS
    uow, provider = seeded_uow(), make_provider(standin, fake_time, interval=interval)
    report = run(uow, provider, now=standin.now, interval=interval, backfill=backfill)
    assert report.errors == {}
    assert report.dropped == ()
    assert report.stored == 5 * per_asset
    assert {s: len(stored(uow, s, interval)) for s in SYMBOLS} == dict.fromkeys(SYMBOLS, per_asset)
    assert market_data_check(provider) == ("ok", "coingecko: circuit closed")


@pytest.mark.parametrize(("interval", "granularity"), [("1h", "4h"), ("30m", "1h"), ("4h", "1d"), ("1h", "4d")])
def test_a_length_the_race_interval_cannot_be_built_from_is_loud(
    standin: CoinGeckoStandIn, fake_time: FakeTime, interval: str, granularity: str
) -> None:
    standin.granularity_ms = {"1h": 2, "4h": 8, "1d": 48, "4d": 192}[granularity] * HALF_HOUR_MS
    provider = make_provider(standin, fake_time, interval=interval, BreakerFailures=10)  # each asset gets its answer
    uow, metrics = seeded_uow(), RecordingMetrics()
    report = run(uow, provider, now=standin.now, interval=interval, backfill=48 * HOUR, metrics=metrics)
    assert report.stored == 0
    assert set(report.errors) == set(SYMBOLS)
    assert all(f"CoinGecko answered {granularity} candles" in e for e in report.errors.values())
    assert {m[0] for m in report.missing} == set(SYMBOLS)
    assert sorted(metrics.unusable) == [("coingecko", s) for s in SYMBOLS]
    status, detail = market_data_check(provider)
    assert status == "degraded"
    assert detail == f"coingecko: no usable candles for {', '.join(SYMBOLS)} in the latest run"
    # every row of the window that could not be used is listed with its reason, as the metric counts it
    reason = f"{granularity} candles cannot make {interval} candles"
    assert report.dropped
    assert {r for _, _, r in report.dropped} == {reason}
    assert sum(count for _, _, count in metrics.dropped) == len(report.dropped)


def test_the_1h_race_on_hourly_rows_is_the_issue_that_stored_nothing_and_said_nothing(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    standin.granularity_ms = 2 * HALF_HOUR_MS
    standin.now += timedelta(minutes=20)  # mid-hour: the forming hour is in the answer, and is not stored
    uow = seeded_uow()
    report = run(uow, make_provider(standin, fake_time), now=standin.now, backfill=24 * HOUR)
    assert report.stored == 5 * 23
    assert (report.errors, report.dropped, report.gaps) == ({}, (), ())


def test_prices_sent_as_strings_are_numbers(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    plain, strings = seeded_uow(), seeded_uow()
    assert run(plain, make_provider(standin, fake_time), now=standin.now).stored == 5 * 12
    standin.string_numbers = True
    assert '"' in standin_body(standin)
    report = run(strings, make_provider(standin, fake_time), now=standin.now)
    assert (report.stored, report.errors, report.dropped) == (5 * 12, {}, ())
    assert strings.state.candles == plain.state.candles


def standin_body(standin: CoinGeckoStandIn) -> str:
    import httpx

    return httpx.get(f"{standin.base_url}/coins/bitcoin/ohlc", params={"vs_currency": "usd", "days": "1"}).text


def test_one_bad_row_costs_its_candle_only_and_is_reported_with_its_reason(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    now_ms = int(standin.now.timestamp() * 1000)
    nan_close = now_ms - 6 * HALF_HOUR_MS  # the second half of the hour opening 3 hours back
    oops_close = now_ms - 12 * HALF_HOUR_MS  # a row of the wrong shape, 6 hours back

    def damage(rows: list[Row]) -> list[Row]:
        out: list[Row] = []
        for r in rows:
            if r[0] == nan_close:
                out.append([r[0], r[1], r[2], r[3], "NaN"])
            elif r[0] == oops_close:
                out.append(r[:4])
            else:
                out.append(r)
        return out

    standin.edit_rows("bitcoin", damage)
    uow, metrics = seeded_uow(), RecordingMetrics()
    report = run(uow, make_provider(standin, fake_time), now=standin.now, metrics=metrics)
    assert report.errors == {}
    assert report.stored == 5 * 12 - 2
    assert len(stored(uow, "BTC")) == 10
    assert all(len(stored(uow, s)) == 12 for s in SYMBOLS if s != "BTC")
    index = next(i for i, r in enumerate(standin_rows(standin)) if r[0] == oops_close)
    assert sorted(report.dropped) == sorted(
        [
            ("BTC", f"row {index}", f"row {index} is not [time, open, high, low, close]: an array of 4"),
            ("BTC", "2024-03-09T20:30:00+00:00", "non-finite value"),
            ("BTC", "2024-03-09T17:00:00+00:00", "only 1 of its 2 30m candles (missing or not published yet)"),
            ("BTC", "2024-03-09T20:00:00+00:00", "only 1 of its 2 30m candles (missing or not published yet)"),
        ]
    )
    assert metrics.dropped == [("coingecko", "BTC", 4)]
    assert metrics.unusable == []


def standin_rows(standin: CoinGeckoStandIn) -> list[Row]:
    import json

    return json.loads(standin_body(standin))  # type: ignore[no-any-return]


def test_a_job_for_a_past_time_asks_for_that_time_s_window(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    at = standin.now - 6 * HOUR  # the job's time; CoinGecko's own clock is 6 hours later
    uow = seeded_uow()
    report = run(uow, make_provider(standin, fake_time), now=at, backfill=12 * HOUR)
    assert {r["query"]["days"][0] for r in standin.requests} == {"1"}  # 12 hours back from `at`, not from 2026
    assert report.stored == 5 * 12
    assert (report.errors, report.dropped) == ({}, ())
    assert stored(uow, "BTC") == [at - 12 * HOUR + i * HOUR for i in range(12)]  # nothing after `at`


def test_an_answer_with_nothing_usable_counts_for_health_and_the_breaker(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    def all_nan(rows: list[Row]) -> list[Row]:
        return [[r[0], "NaN", "NaN", "NaN", "NaN"] for r in rows]

    standin.edit_rows("bitcoin", all_nan)
    provider, uow = make_provider(standin, fake_time, BreakerFailures=3), seeded_uow()
    report = run(uow, provider, now=standin.now)
    assert report.errors["BTC"].endswith("no usable 1h candle for BTC: 24 dropped, e.g. non-finite value")
    assert report.stored == 4 * 12
    assert [r for s, _, r in report.dropped] == ["non-finite value"] * 24  # the window's 30m rows, each listed
    assert market_data_check(provider) == ("degraded", "coingecko: no usable candles for BTC in the latest run")

    # Every coin unusable: three consecutive failed answers open the breaker, the rest are not even asked.
    for coin in ("ethereum", "solana", "ripple", "binancecoin"):
        standin.edit_rows(coin, all_nan)
    standin.now += HOUR
    report = run(uow, provider, now=standin.now)
    assert report.stored == 0
    assert sum("CircuitOpenError" in e for e in report.errors.values()) == 2
    assert provider.resilience.breaker.state is BreakerState.OPEN
    assert market_data_check(provider)[0] == "unavailable"

    standin.row_edits.clear()
    fake_time.now += 301  # half-open: one probe, which succeeds and closes it
    recovered = run(uow, provider, now=standin.now)
    assert (recovered.errors, recovered.stored) == ({}, 12 + 4)  # BTC's 12 hours, the others' latest hour
    assert market_data_check(provider) == ("ok", "coingecko: circuit closed")
