"""Market data ingest: windows asked for, screening, gaps, idempotency, and one asset failing alone."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.model import Asset
from shared.services.ingest import ingest_market_data
from tests.fakes import T0, FakeMarketDataProvider, FakeUnitOfWorkFactory, candle_series, make_candle

HOUR = timedelta(hours=1)
BTC = Asset("BTC", "Bitcoin", "bitcoin")
ETH = Asset("ETH", "Ethereum", "ethereum")
NOW = T0 + 24 * HOUR


def make_uow(*assets: Asset) -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*assets)
    return uow


def ingest(uow: FakeUnitOfWorkFactory, provider: FakeMarketDataProvider, now=NOW, backfill=timedelta(hours=48)):  # type: ignore[no-untyped-def]
    return ingest_market_data(uow_factory=uow, provider=provider, now=now, interval="1h", backfill=backfill)


def test_empty_table_backfills_and_stores_only_closed_candles() -> None:
    uow = make_uow(BTC)
    provider = FakeMarketDataProvider(candle_series("BTC", range(1, 31)))  # 30 hours: 6 not closed by NOW
    report = ingest(uow, provider)
    assert provider.requests == [(("BTC",), NOW - timedelta(hours=48), NOW)]
    assert report.fetched == 24
    assert report.stored == 24
    assert report.latest == {"BTC": NOW - HOUR}
    assert report.errors == {}
    assert len(uow.state.candles[("BTC", "1h")]) == 24


def test_second_run_asks_from_the_latest_candle_and_writes_nothing() -> None:
    uow = make_uow(BTC, ETH)
    provider = FakeMarketDataProvider([*candle_series("BTC", range(1, 25)), *candle_series("ETH", range(1, 25))])
    ingest(uow, provider)
    commits = uow.commits
    again = ingest(uow, provider)
    assert again.stored == 0
    assert again.fetched == 0
    assert uow.commits == commits  # nothing to write, no transaction committed


def test_next_run_fetches_from_latest_plus_interval() -> None:
    uow = make_uow(BTC)
    provider = FakeMarketDataProvider(candle_series("BTC", range(1, 31)))
    ingest(uow, provider)
    later = NOW + 3 * HOUR
    report = ingest(uow, provider, now=later)
    assert provider.requests[-1] == (("BTC",), NOW, later)
    assert report.stored == 3
    assert report.latest["BTC"] == later - HOUR


def test_bad_duplicate_and_unclosed_rows_are_dropped_with_reasons() -> None:
    uow = make_uow(BTC)
    good = candle_series("BTC", [100, 101, 102])
    bad_high = make_candle("BTC", T0 + 3 * HOUR, open_="100", close="110", high="105")
    rows = [good[0], good[1], good[1], good[2], bad_high]
    report = ingest(uow, FakeMarketDataProvider(rows))
    assert report.fetched == 5
    assert report.stored == 3
    reasons = {(t, r) for _, t, r in report.dropped}
    assert ((T0 + HOUR).isoformat(), "duplicate timestamp") in reasons
    assert ((T0 + 3 * HOUR).isoformat(), "high below max(open, close)") in reasons


def test_rows_of_another_symbol_or_interval_are_dropped() -> None:
    class Sloppy(FakeMarketDataProvider):
        def fetch_candles(self, assets, *, start, end):  # type: ignore[no-untyped-def]
            return [make_candle("ETH", T0), make_candle("BTC", T0, interval="4h"), make_candle("BTC", T0 + HOUR)]

    report = ingest(make_uow(BTC), Sloppy())
    assert report.stored == 1
    assert sorted(r.split(" ")[0] for _, _, r in report.dropped) == ["interval", "not"]


def test_gaps_are_reported() -> None:
    uow = make_uow(BTC)
    series = candle_series("BTC", range(1, 11))
    provider = FakeMarketDataProvider([c for i, c in enumerate(series) if i not in (3, 4)])
    report = ingest(uow, provider)
    assert report.gaps == (("BTC", (T0 + 3 * HOUR).isoformat(), (T0 + 4 * HOUR).isoformat()),)


def test_gap_between_stored_history_and_new_candles_is_reported() -> None:
    uow = make_uow(BTC)
    uow.add_candles(candle_series("BTC", [1, 2]))
    provider = FakeMarketDataProvider([make_candle("BTC", T0 + 5 * HOUR)])
    report = ingest(uow, provider)
    assert report.gaps == (("BTC", (T0 + 2 * HOUR).isoformat(), (T0 + 4 * HOUR).isoformat()),)


def test_a_provider_error_for_one_asset_does_not_stop_the_others() -> None:
    uow = make_uow(BTC, ETH)
    provider = FakeMarketDataProvider(candle_series("ETH", [10, 11]), failing={"BTC": TimeoutError("read timed out")})
    report = ingest(uow, provider)
    assert report.errors == {"BTC": "TimeoutError: read timed out"}
    assert report.stored == 2
    assert report.latest == {"BTC": None, "ETH": T0 + HOUR}
    # the closed hours BTC could not fetch are recorded, for the next run to backfill
    assert report.missing == (("BTC", (NOW - 48 * HOUR).isoformat(), (NOW - HOUR).isoformat()),)
    assert report.as_dict()["missing"] == [{"symbol": "BTC", "from": report.missing[0][1], "to": report.missing[0][2]}]


def test_inactive_assets_are_not_fetched() -> None:
    uow = make_uow(BTC, Asset("XRP", "XRP", "ripple", active=False))
    provider = FakeMarketDataProvider()
    ingest(uow, provider)
    assert [r[0] for r in provider.requests] == [("BTC",)]


def test_report_is_json_serialisable() -> None:
    uow = make_uow(BTC)
    report = ingest(uow, FakeMarketDataProvider([make_candle("BTC", T0, close=Decimal("0"))]))
    payload = json.loads(json.dumps(report.as_dict()))
    assert payload["dropped"] == [{"symbol": "BTC", "open_time": T0.isoformat(), "reason": "zero or negative price"}]


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        ingest(make_uow(BTC), FakeMarketDataProvider(), now=NOW.replace(tzinfo=None))
