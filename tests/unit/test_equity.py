"""Equity snapshots: marking to market at the latest closed prices, running drawdown, idempotency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.model import Asset, Portfolio, Position
from shared.services.equity import snapshot_equity
from tests.fakes import T0, FakeUnitOfWorkFactory, candle_series

HOUR = timedelta(hours=1)
D = Decimal


def race(closes: list[int]) -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(Asset("BTC", "Bitcoin", "bitcoin"))
    uow.add_candles(candle_series("BTC", closes))
    holder = uow.add_agent("holder")
    uow.state.portfolios[holder.id] = Portfolio(holder.id, D(1_000), {"BTC": Position(D(10), D(100))})
    uow.add_agent("no portfolio yet")
    return uow


def mark(uow: FakeUnitOfWorkFactory, hours: int):  # type: ignore[no-untyped-def]
    return snapshot_equity(uow_factory=uow, at=T0 + hours * HOUR, interval="1h")


def test_marks_at_the_latest_close_at_or_before_the_time() -> None:
    uow = race([100, 120, 999])
    report = mark(uow, 2)  # the 999 candle closes at 3h: not visible at 2h
    assert (report.written, report.skipped) == (1, 0)
    (snapshot,) = uow.state.equity[1]
    assert snapshot.equity == D(1_000) + 10 * D(120)
    assert snapshot.cash == D(1_000)
    assert 2 not in uow.state.equity  # agents without a portfolio have nothing to mark


def test_peak_and_drawdown_are_running_values() -> None:
    uow = race([100, 200, 150, 180, 250])
    for hours in range(1, 6):
        mark(uow, hours)
    series = uow.state.equity[1]
    assert [s.equity for s in series] == [D(2_000), D(3_000), D(2_500), D(2_800), D(3_500)]
    assert [s.peak_equity for s in series] == [D(2_000), D(3_000), D(3_000), D(3_000), D(3_500)]
    worst = (D(3_000) - D(2_500)) / D(3_000)
    assert series[2].max_drawdown == worst.quantize(D("0.00000001"))
    assert series[-1].max_drawdown == series[2].max_drawdown  # the worst drawdown is remembered
    assert [s.ordinal for s in series] == [1, 2, 3, 4, 5]  # numbered in time order, for thinning curves


def test_marking_the_same_time_twice_writes_nothing() -> None:
    uow = race([100, 200])
    mark(uow, 2)
    again = mark(uow, 2)
    assert (again.written, again.skipped) == (0, 1)
    assert len(uow.state.equity[1]) == 1


def test_an_earlier_time_never_rewrites_history() -> None:
    uow = race([100, 200])
    mark(uow, 2)
    late = mark(uow, 1)
    assert late.written == 0
    assert len(uow.state.equity[1]) == 1


def test_snapshots_are_numbered_without_gaps_when_hours_are_skipped() -> None:
    uow = race([100, 200, 150, 180, 250])
    for hours in (1, 2, 2, 5):  # a repeated hour writes nothing; skipped hours leave no hole in the numbers
        mark(uow, hours)
    series = uow.state.equity[1]
    assert [(s.at - T0) // HOUR for s in series] == [1, 2, 5]
    assert [s.ordinal for s in series] == [1, 2, 3]


def test_report_and_naive_time() -> None:
    uow = race([100])
    assert mark(uow, 1).as_dict()["priced_symbols"] == ["BTC"]
    with pytest.raises(ValueError, match="naive"):
        snapshot_equity(uow_factory=uow, at=T0.replace(tzinfo=None), interval="1h")
