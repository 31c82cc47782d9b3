"""The frozen market snapshot (hash, anti-look-ahead, staleness) and the screening of incoming candles."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.snapshot import MarketSnapshot, screen_candles
from tests.fakes import T0, candle_series, make_candle

HOUR = timedelta(hours=1)


def test_hash_is_stable_for_the_same_data_in_any_input_order() -> None:
    btc = candle_series("BTC", [100, 101, 102])
    eth = candle_series("ETH", [10, 11, 12])
    at = T0 + 3 * HOUR
    first = MarketSnapshot.build(at, {"BTC": btc, "ETH": eth})
    second = MarketSnapshot.build(at, {"ETH": list(reversed(eth)), "BTC": btc})
    assert first.sha256 == second.sha256
    assert len(first.sha256) == 64


def test_hash_changes_with_any_price_or_the_cycle_time() -> None:
    btc = candle_series("BTC", [100, 101, 102])
    at = T0 + 3 * HOUR
    base = MarketSnapshot.build(at, {"BTC": btc})
    changed = [*btc[:-1], replace(btc[-1], close=Decimal("102.00000001"))]
    assert MarketSnapshot.build(at, {"BTC": changed}).sha256 != base.sha256
    assert MarketSnapshot.build(at + HOUR, {"BTC": btc}).sha256 != base.sha256


def test_a_candle_closing_after_the_cycle_time_is_look_ahead() -> None:
    btc = candle_series("BTC", [100, 101, 102])
    with pytest.raises(ValueError, match="look-ahead"):
        MarketSnapshot.build(T0 + 2 * HOUR, {"BTC": btc})  # the third candle closes at T0 + 3h


def test_last_prices_and_staleness() -> None:
    snapshot = MarketSnapshot.build(T0 + 5 * HOUR, {"BTC": candle_series("BTC", [100, 101, 102]), "SOL": []})
    assert snapshot.last_prices == {"BTC": Decimal(102)}
    assert "SOL" not in snapshot.candles  # a symbol without candles is left out, not an empty entry
    assert snapshot.staleness() == 2 * HOUR


def test_empty_snapshot_has_no_data_time() -> None:
    snapshot = MarketSnapshot.build(T0, {})
    assert snapshot.candles == {}
    assert snapshot.staleness() is None


NOW = T0 + 10 * HOUR


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (make_candle("BTC", T0, open_="1", close="NaN", high="2", low="1"), "non-finite value"),
        (make_candle("BTC", T0, close="0"), "zero or negative price"),
        (make_candle("BTC", T0, close="-5"), "zero or negative price"),
        (make_candle("BTC", T0, volume="-1"), "negative volume"),
        (make_candle("BTC", T0, open_="100", close="110", high="105"), "high below max(open, close)"),
        (make_candle("BTC", T0, open_="100", close="110", low="101"), "low above min(open, close)"),
        (make_candle("BTC", T0.replace(tzinfo=None)), "naive timestamp"),
        (make_candle("BTC", NOW), "candle not closed yet (future close time)"),
    ],
)
def test_screen_drops_each_kind_of_bad_candle_with_its_reason(bad: object, reason: str) -> None:
    good = make_candle("BTC", T0 - HOUR)
    screening = screen_candles([good, bad], NOW)  # type: ignore[list-item]
    assert screening.accepted == (good,)
    assert [r for _, r in screening.dropped] == [reason]


def test_screen_drops_duplicates_and_out_of_order_rows() -> None:
    a, b, c = candle_series("BTC", [1, 2, 3])
    screening = screen_candles([a, b, b, a, c], NOW)
    assert screening.accepted == (a, b, c)
    assert [r for _, r in screening.dropped] == ["duplicate timestamp", "out of order"]


def test_screen_tracks_order_per_symbol() -> None:
    btc = candle_series("BTC", [1, 2])
    eth = candle_series("ETH", [1, 2])
    screening = screen_candles([btc[0], btc[1], eth[0], eth[1]], NOW)
    assert len(screening.accepted) == 4
    assert screening.dropped == ()
