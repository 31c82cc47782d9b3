"""Bring your own market data: the replay on a directory of candle files (real Binance hours of December 2020,
with the exchange's own maintenance gaps), its checks of bad files, and its data-quality report."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.health import market_data_check
from shared.adapters.market_data.factory import make_market_data_provider
from shared.adapters.market_data.replay import ReplayDataError
from shared.adapters.market_data.replay_dir import DirectoryReplayProvider, chosen_symbols, parse_timestamp
from shared.adapters.market_data.replay_setup import race_assets, replay_start, with_replay_data
from shared.config import MarketDataSettings, Settings
from shared.domain.model import Asset

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "replay_dir"
HEADER = "timestamp,open,high,low,close,volume\n"
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def provider() -> DirectoryReplayProvider:
    return DirectoryReplayProvider(FIXTURE)


def test_the_three_timestamp_forms_of_the_fixture_read_the_same_hours(provider: DirectoryReplayProvider) -> None:
    # BTC is ISO 8601, ETH gzip with epoch milliseconds, SOL epoch seconds: all open at the same hours.
    assert provider.available_symbols() == ["BTC", "ETH", "SOL"]
    opens = {s: [c.open_time for c in provider._load(s).candles] for s in provider.available_symbols()}
    assert opens["BTC"] == opens["ETH"] == opens["SOL"]
    assert opens["BTC"][0] == utc(2020, 12, 19)
    assert opens["BTC"][-1] == utc(2020, 12, 26, 23)
    assert len(opens["BTC"]) == 188  # 8 days = 192 hours, 4 of them missing on the exchange
    day = provider.fetch_candles(
        [Asset("BTC", "BTC", "btc")], start=utc(2020, 12, 21, 13), end=utc(2020, 12, 21, 19) + timedelta(minutes=30)
    )
    # 14:00 is a real zero-volume bar; 15:00-17:00 never traded (Binance maintenance); 19:00 has not closed.
    assert [c.open_time.hour for c in day] == [13, 14, 18]
    assert day[1].volume == 0
    assert day[1].open == day[1].close == Decimal("22646.53")


def test_gaps_and_zero_volume_bars_are_counted_with_their_ranges(provider: DirectoryReplayProvider) -> None:
    quality = provider.data_quality()
    assert quality["missing_candles"] == 12
    assert quality["zero_volume_bars"] == 3
    btc = quality["symbols"][0]
    assert btc["symbol"] == "BTC"
    assert btc["candles"] == 188
    assert btc["gaps"] == [
        {"from": "2020-12-21T15:00:00+00:00", "to": "2020-12-21T17:00:00+00:00", "candles": 3},
        {"from": "2020-12-25T02:00:00+00:00", "to": "2020-12-25T02:00:00+00:00", "candles": 1},
    ]
    assert btc["zero_volume"] == [
        {"from": "2020-12-21T14:00:00+00:00", "to": "2020-12-21T14:00:00+00:00", "candles": 1}
    ]
    lines = provider.quality_lines()
    assert "12 missing candles, 3 zero-volume bars" in lines[0]
    assert "2020-12-21 15:00..2020-12-21 17:00 (3)" in lines[1]
    status, detail = market_data_check(provider)
    assert status == "ok"
    assert detail is not None
    assert "BTC: gaps 2020-12-21T15:00:00+00:00..2020-12-21T17:00:00+00:00" in detail
    assert "zero volume 2020-12-21T14:00:00+00:00" in detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-12-21T14:00:00Z", utc(2020, 12, 21, 14)),
        ("2020-12-21T16:00:00+02:00", utc(2020, 12, 21, 14)),
        ("1608559200", utc(2020, 12, 21, 14)),
        ("1608559200000", utc(2020, 12, 21, 14)),
    ],
)
def test_timestamps_are_iso_with_an_offset_or_epoch_seconds_or_milliseconds(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="without a UTC offset"):
        parse_timestamp("2020-12-21 14:00:00")


GOOD = "2020-12-21T13:00:00Z,100,110,90,105,1\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,o,h,l,c,v\n" + GOOD, r"BTC_1h.csv:1: expected the header timestamp,open,high,low,close,volume"),
        (HEADER + GOOD + "2020-12-21T14:00:00Z,100,abc,90,105,1\n", r"BTC_1h.csv:3: not a number"),
        (HEADER + GOOD + "2020-12-21T14:00:00Z,100,80,90,85,1\n", r"BTC_1h.csv:3: high below max\(open, close\)"),
        (HEADER + GOOD + GOOD, r"BTC_1h.csv:3: duplicate timestamp"),
        (HEADER + "2020-12-21T14:00:00Z,100,110,90,105,1\n" + GOOD, r"BTC_1h.csv:3: timestamp out of order"),
        (HEADER + "2020-12-21 13:00:00,100,110,90,105,1\n", r"BTC_1h.csv:2: bad timestamp \(timestamp without a UTC"),
        (HEADER + "2020-12-21T13:30:00Z,100,110,90,105,1\n", r"BTC_1h.csv:2: open time .* is not on the 1h grid"),
        (HEADER + "2020-12-21T13:00:00Z,100,110,90,105,-1\n", r"BTC_1h.csv:2: negative volume"),
        (HEADER + "2020-12-21T13:00:00Z,100,110,90,NaN,1\n", r"BTC_1h.csv:2: non-finite value"),
        (HEADER + "2020-12-21T13:00:00Z,100,110,90\n", r"BTC_1h.csv:2: expected 6 fields, got 4"),
        (HEADER, r"BTC_1h.csv: no candles after the header"),
    ],
)
def test_a_bad_file_names_its_line_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "BTC_1h.csv").write_text(content)
    with pytest.raises(ReplayDataError, match=message):
        DirectoryReplayProvider(tmp_path)


def test_a_bad_gzip_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "BTC_1h.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ReplayDataError, match=r"BTC_1h.csv.gz: cannot be read as gzip UTF-8 CSV"):
        DirectoryReplayProvider(tmp_path)


def test_directory_problems_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ReplayDataError, match="is not a directory"):
        DirectoryReplayProvider(tmp_path / "nowhere")
    (tmp_path / "README.md").write_text("notes are ignored")
    with pytest.raises(ReplayDataError, match=r"has no \{SYMBOL\}_1h.csv or .csv.gz file"):
        DirectoryReplayProvider(tmp_path)
    (tmp_path / "BTC_4h.csv").write_text(HEADER + GOOD)  # another interval's file: not this race's
    with pytest.raises(ReplayDataError, match="has no"):
        DirectoryReplayProvider(tmp_path)
    (tmp_path / "BTC_7h.csv").write_text(HEADER + GOOD)
    with pytest.raises(ReplayDataError, match=r"BTC_7h.csv: unknown interval '7h'"):
        DirectoryReplayProvider(tmp_path)
    (tmp_path / "BTC_7h.csv").unlink()
    (tmp_path / "BTC-1h.csv").write_text(HEADER + GOOD)
    with pytest.raises(ReplayDataError, match=r"BTC-1h.csv: expected a file name like BTC_1h.csv"):
        DirectoryReplayProvider(tmp_path)


def test_one_symbol_in_two_files_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "BTC_1h.csv").write_text(HEADER + GOOD)
    with gzip.open(tmp_path / "BTC_1h.csv.gz", "wt") as handle:
        handle.write(HEADER + GOOD)
    with pytest.raises(ReplayDataError, match="BTC has two files"):
        DirectoryReplayProvider(tmp_path)


def test_the_assets_are_chosen_from_the_files_present(tmp_path: Path) -> None:
    chosen = DirectoryReplayProvider(FIXTURE, symbols=chosen_symbols(" btc, SOL "))
    assert chosen.available_symbols() == ["BTC", "SOL"]
    assert chosen.fetch_candles([Asset("ETH", "ETH", "eth")], start=utc(2020, 12, 19), end=utc(2020, 12, 27)) == []
    with pytest.raises(ReplayDataError, match=r"no 1h file for DOGE .* \(files for: BTC, ETH, SOL\)"):
        DirectoryReplayProvider(FIXTURE, symbols=["BTC", "DOGE"])
    assert chosen_symbols("") is None


def test_an_asset_the_seed_does_not_know_gets_a_row_named_after_its_symbol(tmp_path: Path) -> None:
    shutil.copy(FIXTURE / "BTC_1h.csv", tmp_path / "BTC_1h.csv")
    shutil.copy(FIXTURE / "SOL_1h.csv", tmp_path / "WIF_1h.csv")  # any symbol a user has a file for
    settings = Settings(market_data=MarketDataSettings(Provider="replay", ReplayDir=tmp_path))
    provider = make_market_data_provider(settings)
    assert race_assets(settings, provider) == (Asset("BTC", "Bitcoin", "bitcoin"), Asset("WIF", "WIF", "wif"))


def test_the_race_starts_once_every_asset_has_a_snapshot_of_candles() -> None:
    settings = Settings(market_data=MarketDataSettings(Provider="replay", ReplayDir=FIXTURE))
    provider = make_market_data_provider(settings)
    # First candles open 2020-12-19 00:00; 48 of them (Race__SnapshotCandles) have closed by 12-21 00:00.
    assert replay_start(settings, provider, ["BTC", "ETH", "SOL"]) == utc(2020, 12, 21)
    assert with_replay_data(settings, provider).market_data.replay_start == utc(2020, 12, 21)
    explicit = Settings(
        market_data=MarketDataSettings(Provider="replay", ReplayDir=FIXTURE, ReplayStart=utc(2020, 12, 22))
    )
    assert with_replay_data(explicit, provider).market_data.replay_start == utc(2020, 12, 22)
    bundled = Settings(market_data=MarketDataSettings(Provider="replay"))
    bundled_provider = make_market_data_provider(bundled)
    assert with_replay_data(bundled, bundled_provider) is bundled
    assert [a.symbol for a in race_assets(bundled, bundled_provider)] == ["BTC", "ETH", "SOL", "XRP", "BNB"]


def test_a_blank_replay_dir_setting_means_the_bundled_data() -> None:
    assert MarketDataSettings(ReplayDir="  ").replay_dir is None
