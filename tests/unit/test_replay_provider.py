"""The replay provider on the real bundled candles, and its handling of malformed files."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.market_data.factory import MarketDataProviderUnavailable, make_market_data_provider
from shared.adapters.market_data.replay import ReplayDataError, ReplayMarketDataProvider
from shared.config import MarketDataSettings, Settings
from shared.domain.model import Asset

BTC = Asset("BTC", "Bitcoin", "bitcoin")
ETH = Asset("ETH", "Ethereum", "ethereum")
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def replay() -> ReplayMarketDataProvider:
    return ReplayMarketDataProvider()


def test_bundled_btc_contains_the_march_2024_high(replay: ReplayMarketDataProvider) -> None:
    day = datetime(2024, 3, 14, tzinfo=UTC)
    candles = replay.fetch_candles([BTC], start=day, end=day + timedelta(days=1))
    assert len(candles) == 24
    assert max(c.high for c in candles) == Decimal("73777.0")
    assert all(isinstance(c.close, Decimal) for c in candles)


def test_no_candle_closes_after_end_and_none_opens_before_start(replay: ReplayMarketDataProvider) -> None:
    start = datetime(2024, 6, 1, 0, 30, tzinfo=UTC)
    end = datetime(2024, 6, 2, 10, 59, tzinfo=UTC)
    candles = replay.fetch_candles([BTC, ETH], start=start, end=end)
    assert candles
    assert all(c.close_time <= end for c in candles)
    assert all(c.open_time >= start for c in candles)
    btc = [c for c in candles if c.symbol == "BTC"]
    assert btc[0].open_time == datetime(2024, 6, 1, 1, tzinfo=UTC)
    assert btc[-1].close_time == datetime(2024, 6, 2, 10, tzinfo=UTC)
    assert [c.open_time for c in btc] == sorted(c.open_time for c in btc)


def test_coverage_and_unknown_symbols(replay: ReplayMarketDataProvider) -> None:
    assert replay.coverage("BTC") == (datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 12, 30, 1, tzinfo=UTC))
    assert replay.coverage("BNB") == (datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 11, 3, 9, tzinfo=UTC))
    doge = Asset("DOGE", "Dogecoin", "dogecoin")
    assert (
        replay.fetch_candles([doge], start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2025, 1, 1, tzinfo=UTC)) == []
    )
    assert replay.coverage("DOGE") is None
    assert replay.available_symbols() == ["BNB", "BTC", "ETH", "SOL", "XRP"]


def test_naive_window_is_rejected(replay: ReplayMarketDataProvider) -> None:
    with pytest.raises(ValueError, match="naive"):
        replay.fetch_candles([BTC], start=datetime(2024, 1, 1), end=datetime(2024, 1, 2, tzinfo=UTC))


def write_gz(path: Path, text: str) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("2024-01-01T00:00:00Z,1,2,0.5,1.5\n", "expected 6 fields"),
        ("2024-01-01T00:00:00Z,1,2,0.5,abc,3\n", "bad number"),
        ("yesterday,1,2,0.5,1.5,3\n", "bad timestamp"),
        ("2024-01-01T00:00:00,1,2,0.5,1.5,3\n", "without a UTC offset"),
        ("2024-01-01T00:00:00Z,1,2,0.5,1.5,NaN\n", "non-finite"),
        ("2024-01-01T01:00:00Z,1,2,0.5,1.5,3\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n", "not after the previous row"),
    ],
)
def test_malformed_rows_name_the_file_and_line(tmp_path: Path, body: str, problem: str) -> None:
    write_gz(tmp_path / "BTC_1h.csv.gz", "timestamp,open,high,low,close,volume\n" + body)
    provider = ReplayMarketDataProvider(tmp_path)
    with pytest.raises(ReplayDataError, match=problem) as error:
        provider.fetch_candles([BTC], start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC))
    line = body.count("\n") + 1
    assert f"BTC_1h.csv.gz:{line}:" in str(error.value)


def test_bad_header_is_reported(tmp_path: Path) -> None:
    write_gz(tmp_path / "BTC_1h.csv.gz", "time,o,h,l,c,v\n")
    with pytest.raises(ReplayDataError, match=r"BTC_1h.csv.gz:1: expected header"):
        ReplayMarketDataProvider(tmp_path).coverage("BTC")


def test_factory_builds_replay_and_refuses_an_interval_without_bundled_candles() -> None:
    provider = make_market_data_provider(Settings(MarketData=MarketDataSettings(Provider="replay")))
    assert provider.name == "replay"
    # (the coingecko provider is covered in tests/coingecko/test_provider.py)
    with pytest.raises(MarketDataProviderUnavailable, match="no bundled candles"):
        make_market_data_provider(Settings(MarketData=MarketDataSettings(Provider="replay", Interval="4h")))
