"""Return figures against an independent reference (empyrical-reloaded) on real bundled 2024 candles, and against
numbers written out by hand on small series."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import empyrical  # type: ignore[import-untyped]
import numpy as np
import pytest

from shared.domain.model import Side
from shared.domain.money import q
from shared.domain.performance import exposure, longest_drawdown, return_figures, simple_returns, turnover
from shared.domain.statistics import EquityMark
from tests.unit.statistics_fixtures import HOUR, T0, bundled_closes, bundled_closes_by_time, fill, marks_of

HOURS_PER_YEAR = 8760.0
START = Decimal(100_000)


def _buy_and_hold(symbol: str) -> list[Decimal]:
    closes = bundled_closes(symbol)
    return [q(START * c / closes[0]) for c in closes]


def _equal_weight() -> list[Decimal]:
    by_symbol = [bundled_closes_by_time(s) for s in ("BTC", "ETH", "SOL", "BNB", "XRP")]
    hours = sorted(set.intersection(*(set(closes) for closes in by_symbol)))
    return [q(sum((START / 5 * c[h] / c[hours[0]] for c in by_symbol), Decimal(0))) for h in hours]


def _trend_follower() -> list[Decimal]:
    """All in ETH while the last close is above its 24-hour average, all cash otherwise (a fee-free toy): real
    prices, long flat stretches, and many sign changes."""
    closes = bundled_closes("ETH")
    cash, units = START, Decimal(0)
    curve = []
    for i, close in enumerate(closes):
        if i >= 24:
            above = close > sum(closes[i - 24 : i]) / 24
            if above and units == 0:
                units, cash = cash / close, Decimal(0)
            elif not above and units > 0:
                cash, units = units * close, Decimal(0)
        curve.append(q(cash + units * close))
    return curve


REAL_CURVES = {
    "BTC buy-and-hold": lambda: _buy_and_hold("BTC"),
    "SOL buy-and-hold": lambda: _buy_and_hold("SOL"),
    "equal weight of five": _equal_weight,
    "ETH trend": _trend_follower,
}


@pytest.mark.parametrize("curve_name", sorted(REAL_CURVES))
def test_return_figures_match_empyrical_on_bundled_candles(curve_name: str) -> None:
    equities = REAL_CURVES[curve_name]()
    assert len(equities) > 7000  # most of a year of hourly marks, not a toy (BNB's file is shorter)
    marks = marks_of(equities)
    floats = [float(e) for e in equities]
    figures = return_figures(marks, floats, simple_returns(floats), HOURS_PER_YEAR)

    reference_returns = np.diff(np.array(floats)) / np.array(floats[:-1])
    ann = {"annualization": HOURS_PER_YEAR}
    assert figures.sharpe == pytest.approx(empyrical.sharpe_ratio(reference_returns, **ann), rel=1e-9)
    assert figures.sortino == pytest.approx(empyrical.sortino_ratio(reference_returns, **ann), rel=1e-9)
    assert figures.annualised_volatility == pytest.approx(
        empyrical.annual_volatility(reference_returns, **ann), rel=1e-9
    )
    assert figures.annualised_return == pytest.approx(empyrical.annual_return(reference_returns, **ann), rel=1e-9)
    assert figures.max_drawdown == pytest.approx(-empyrical.max_drawdown(reference_returns), rel=1e-9)
    assert figures.calmar == pytest.approx(empyrical.calmar_ratio(reference_returns, **ann), rel=1e-9)
    assert figures.total_return == pytest.approx(empyrical.cum_returns_final(reference_returns), rel=1e-9)


def test_hand_computed_series() -> None:
    # returns 0.1, -0.1, 0, 0.1: mean 0.025, squared deviations sum 0.0275, downside sum of squares 0.01
    equities = ["100", "110", "99", "99", "108.9"]
    marks = marks_of(equities)
    floats = [float(e) for e in equities]
    periods_per_year = 4.0  # sqrt = 2
    figures = return_figures(marks, floats, simple_returns(floats), periods_per_year)
    std = math.sqrt(0.0275 / 3)
    assert figures.total_return == pytest.approx(0.089)
    assert figures.annualised_return == pytest.approx(0.089)  # four returns at four per year: one year
    assert figures.annualised_volatility == pytest.approx(std * 2)
    assert figures.sharpe == pytest.approx(0.025 / std * 2)
    assert figures.sortino == pytest.approx(0.025 / math.sqrt(0.01 / 4) * 2)  # = 1.0
    assert figures.sortino == pytest.approx(1.0)
    assert figures.max_drawdown == pytest.approx(0.1)  # 110 -> 99
    assert figures.calmar == pytest.approx(0.89)
    assert figures.max_drawdown_duration == 3 * HOUR  # from the 110 peak to the last mark, never regained


def test_drawdown_duration_runs_from_peak_to_recovery() -> None:
    marks = marks_of(["100", "90", "100", "95", "96", "101", "101"])
    assert longest_drawdown(marks) == 3 * HOUR  # 100 at hour 2, regained at hour 5
    assert longest_drawdown(marks_of(["100", "101", "102"])) == timedelta(0)
    assert longest_drawdown(marks_of(["100"])) is None


def test_too_few_points_give_none_not_zero() -> None:
    nothing = return_figures([], [], [], HOURS_PER_YEAR)
    assert nothing.total_return is None
    assert nothing.sharpe is None
    assert nothing.max_drawdown_duration is None
    assert nothing.max_drawdown == 0.0

    one = return_figures(marks_of(["100"]), [100.0], [], HOURS_PER_YEAR)
    assert one.total_return is None
    assert one.annualised_return is None

    two = return_figures(marks_of(["100", "101"]), [100.0, 101.0], [0.01], HOURS_PER_YEAR)
    assert two.total_return == pytest.approx(0.01)
    assert two.annualised_volatility is None
    assert two.sharpe is None
    assert two.sortino is None

    flat = [100.0] * 5
    still = return_figures(marks_of(["100"] * 5), flat, simple_returns(flat), HOURS_PER_YEAR)
    assert still.annualised_volatility == 0.0
    assert still.sharpe is None
    assert still.sortino is None
    assert still.calmar is None
    assert still.max_drawdown == 0.0
    assert still.max_drawdown_duration == timedelta(0)

    rising = [100.0, 101.0, 102.0]
    up = return_figures(marks_of(rising), rising, simple_returns(rising), HOURS_PER_YEAR)
    assert up.sortino is None
    assert up.calmar is None


def test_exposure_and_turnover() -> None:
    marks = [
        EquityMark(T0, Decimal(100), Decimal(100)),
        EquityMark(T0 + HOUR, Decimal(100), Decimal(50)),
        EquityMark(T0 + 2 * HOUR, Decimal(100), Decimal(100)),
    ]
    assert exposure(marks) == pytest.approx(1 / 3)
    assert exposure([]) is None
    fills = [fill(0.5, Side.BUY, "1", "50", "0.05"), fill(1.5, Side.SELL, "1", "60", "0.06")]
    # traded notional 110 over a mean equity of 100, in 2 cycles; scaled to a year of 8760 cycles
    assert turnover([100.0, 100.0, 100.0], fills, HOURS_PER_YEAR) == pytest.approx(1.1 * 8760 / 2)
    assert turnover([100.0], fills, HOURS_PER_YEAR) is None
    assert turnover([0.0, 0.0], fills, HOURS_PER_YEAR) is None


def test_a_wiped_out_curve_does_not_divide_by_zero() -> None:
    floats = [100.0, 0.0, 0.0]
    assert simple_returns(floats) == [-1.0, 0.0]
    figures = return_figures(marks_of(["100", "0", "0"]), floats, simple_returns(floats), HOURS_PER_YEAR)
    assert figures.total_return == -1.0
    assert figures.annualised_return == -1.0
    assert figures.max_drawdown == 1.0
