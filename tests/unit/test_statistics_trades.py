"""Round trips: FIFO lots per symbol, partial closes, fees split between the pieces, bad fills refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.model import Side
from shared.domain.trade_statistics import round_trips, trade_stats
from tests.unit.statistics_fixtures import HOUR, fill

D = Decimal
BUY, SELL = Side.BUY, Side.SELL

# Lot 1: 1 @ 100 (fee 1); lot 2: 2 @ 110 (fee 2). A sale of 2 @ 120 (fee 3) closes lot 1 and half of lot 2; a
# sale of 1 @ 100 (fee 1) closes the rest of lot 2.
PARTIAL_CLOSES = [
    fill(0, BUY, "1", "100", "1"),
    fill(1, BUY, "2", "110", "2"),
    fill(3, SELL, "2", "120", "3"),
    fill(5, SELL, "1", "100", "1"),
]


def test_fifo_with_partial_closes_splits_fees_pro_rata() -> None:
    trips = round_trips(PARTIAL_CLOSES)
    assert [(t.quantity, t.pnl, t.holding) for t in trips] == [
        (D(1), D("17.5"), 3 * HOUR),  # (120 - 100) x 1 - buy fee 1 - half the sale's fee 1.5
        (D(1), D("7.5"), 2 * HOUR),  # (120 - 110) x 1 - half of lot 2's fee 1 - the sale's other half 1.5
        (D(1), D(-12), 4 * HOUR),  # (100 - 110) x 1 - the rest of lot 2's fee 1 - the sale's fee 1
    ]
    # Everything closed: the trips add up to proceeds - cost - every fee, to the cent and beyond.
    assert sum(t.pnl for t in trips) == D(340) - D(320) - D(7)


def test_trade_stats_of_the_partial_closes() -> None:
    stats = trade_stats(PARTIAL_CLOSES)
    assert stats.round_trips == 3
    assert stats.win_rate == pytest.approx(2 / 3)
    assert stats.profit_factor == pytest.approx(25 / 12)
    assert stats.average_win == D("12.5")
    assert stats.average_loss == D(-12)
    assert stats.biggest_win == D("17.5")
    assert stats.biggest_loss == D(-12)
    assert stats.average_holding == 3 * HOUR


def test_symbols_are_matched_separately_and_open_lots_are_not_round_trips() -> None:
    fills = [
        fill(0, BUY, "1", "100", "0", symbol="BTC"),
        fill(1, BUY, "10", "5", "0", symbol="ETH"),
        fill(2, SELL, "4", "6", "0", symbol="ETH"),
        fill(3, SELL, "0.5", "90", "0", symbol="BTC"),
    ]
    trips = round_trips(fills)
    assert [(t.symbol, t.quantity, t.pnl) for t in trips] == [("ETH", D(4), D(4)), ("BTC", D("0.5"), D(-5))]
    stats = trade_stats(fills)
    assert stats.round_trips == 2
    assert stats.win_rate == 0.5
    assert stats.profit_factor == pytest.approx(4 / 5)


def test_uneven_fee_split_adds_up_exactly() -> None:
    fills = [fill(0, BUY, "3", "10", "1"), fill(1, SELL, "1", "10", "0.7"), fill(2, SELL, "2", "10", "0.3")]
    trips = round_trips(fills)
    assert sum(t.pnl for t in trips) == D(-2)  # no price change: the fees are the whole loss, nothing lost in thirds


def test_break_even_trip_is_neither_win_nor_loss() -> None:
    stats = trade_stats([fill(0, BUY, "1", "100", "0"), fill(2, SELL, "1", "100", "0")])
    assert stats.round_trips == 1
    assert stats.win_rate == 0.0
    assert stats.profit_factor is None
    assert stats.average_win is None
    assert stats.average_loss is None
    assert stats.average_holding == timedelta(hours=2)


def test_no_losing_trip_leaves_profit_factor_undefined() -> None:
    stats = trade_stats([fill(0, BUY, "1", "100", "0"), fill(1, SELL, "1", "110", "1")])
    assert stats.win_rate == 1.0
    assert stats.profit_factor is None
    assert stats.biggest_loss is None
    assert stats.biggest_win == D(9)


def test_no_fills_no_round_trips() -> None:
    stats = trade_stats([fill(0, BUY, "1", "100", "1")])
    assert stats.round_trips == 0
    assert stats.win_rate is None
    assert stats.average_holding is None


def test_selling_more_than_bought_is_refused() -> None:
    with pytest.raises(ValueError, match=r"fill 1 sells 2 BTC .* only 1 was bought"):
        round_trips([fill(0, BUY, "1", "100", "0"), fill(1, SELL, "2", "100", "0")])
