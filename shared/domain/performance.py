"""Return-based figures of one equity curve: returns, volatility, Sharpe, Sortino, drawdown, Calmar, exposure.

Stdlib only, floats for ratios (equity is converted once). Conventions match empyrical's (sample std with
ddof=1, downside deviation over all returns, CAGR over the number of returns), which the tests check against.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

from shared.domain.statistics import MIN_RETURNS_FOR_DISPERSION, EquityMark, Fill

_EQUITY = operator.attrgetter("equity")
_CASH = operator.attrgetter("cash")


@dataclass(frozen=True, slots=True)
class ReturnFigures:
    total_return: float | None
    annualised_return: float | None
    annualised_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    max_drawdown_duration: timedelta | None


def simple_returns(equities: Sequence[float]) -> list[float]:
    """r_t = E_t / E_{t-1} - 1 between consecutive marks; a step from 0 equity (a wiped-out agent) returns 0."""
    return [(cur / prev - 1.0) if prev > 0 else 0.0 for prev, cur in pairwise(equities)]


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def sample_std(values: Sequence[float]) -> float:
    """Standard deviation with ddof=1 (two-pass, so a constant series gives exactly 0)."""
    mu = mean(values)
    deviations = [v - mu for v in values]
    return math.sqrt(math.fsum([d * d for d in deviations]) / (len(values) - 1))


def downside_deviation(values: Sequence[float]) -> float:
    """sqrt(mean(min(r, 0)^2)) over all returns (target 0), as in Sortino & van der Meer and empyrical."""
    return math.sqrt(math.fsum([v * v for v in values if v < 0]) / len(values))


def max_drawdown(equities: Sequence[float]) -> float:
    """Largest (peak - trough) / peak over running peaks, as a positive fraction; 0 when equity never falls."""
    peak = -math.inf
    worst = 0.0
    for value in equities:
        if value > peak:
            peak = value
        elif peak > 0 and (fall := (peak - value) / peak) > worst:
            worst = fall
    return worst


def longest_drawdown(marks: Sequence[EquityMark], equities: Sequence[float] | None = None) -> timedelta | None:
    """Longest time from a running peak to the first mark back at or above it (or to the last mark if never).

    `equities`: the marks' equity as floats when the caller has them. None with fewer than 2 marks;
    timedelta(0) when equity never fell below a previous peak.
    """
    if len(marks) < 2:
        return None
    values = equities if equities is not None else [float(m.equity) for m in marks]
    longest = timedelta(0)
    peak_value = values[0]
    peak_index = 0
    underwater = False
    for index in range(1, len(values)):
        value = values[index]
        if value >= peak_value:
            if underwater:
                longest = max(longest, marks[index].at - marks[peak_index].at)
                underwater = False
            peak_value, peak_index = value, index
        else:
            underwater = True
    if underwater:
        longest = max(longest, marks[-1].at - marks[peak_index].at)
    return longest


def return_figures(
    marks: Sequence[EquityMark], equities: Sequence[float], returns: Sequence[float], periods_per_year: float
) -> ReturnFigures:
    """Every return-based figure of one curve; `equities` are the marks' equity as floats and `returns` their
    `simple_returns` (both computed once by the caller). None where too few marks (see docs/statistics.md)."""
    drawdown = max_drawdown(equities)
    duration = longest_drawdown(marks, equities)
    if not returns or equities[0] <= 0:
        return ReturnFigures(None, None, None, None, None, None, drawdown, duration)
    total = equities[-1] / equities[0] - 1.0
    annual = (1.0 + total) ** (periods_per_year / len(returns)) - 1.0 if total > -1.0 else -1.0
    volatility = sharpe = sortino = None
    if len(returns) >= MIN_RETURNS_FOR_DISPERSION:
        scale = math.sqrt(periods_per_year)
        std = sample_std(returns)
        mu = mean(returns)
        volatility = std * scale
        sharpe = mu / std * scale if std > 0 else None
        downside = downside_deviation(returns)
        sortino = mu / downside * scale if downside > 0 else None
    calmar = annual / drawdown if drawdown > 0 else None
    return ReturnFigures(total, annual, volatility, sharpe, sortino, calmar, drawdown, duration)


def exposure(marks: Sequence[EquityMark]) -> float | None:
    """Share of marks at which something was invested (equity != cash); None without marks."""
    if not marks:
        return None
    invested = int(sum(map(operator.ne, map(_EQUITY, marks), map(_CASH, marks))))
    return invested / len(marks)


def turnover(equities: Sequence[float], fills: Sequence[Fill], periods_per_year: float) -> float | None:
    """Annualised turnover: traded notional (buys and sells) / mean equity, scaled from the marked span to a year.

    turnover = (sum |q x p| / mean equity) x periods_per_year / returns. None with fewer than 2 marks or a
    mean equity of 0.
    """
    if len(equities) < 2:
        return None
    mean_equity = mean(equities)
    if mean_equity <= 0:
        return None
    notional = float(sum((f.quantity * f.price for f in fills), Decimal(0)))
    return notional / mean_equity * periods_per_year / (len(equities) - 1)
