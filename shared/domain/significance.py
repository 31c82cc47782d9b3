"""Inference on the race's figures: paired stationary-bootstrap intervals against the controls, Lo's (2002) Sharpe
standard error under serial correlation, and the deflated Sharpe ratio (Bailey & Lopez de Prado 2014).

numpy and arch (with the scipy and pandas it brings) are imported inside the functions, never at module import:
`function_app` must start without them (the cold-start bench checks it). Definitions in docs/statistics.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import TYPE_CHECKING

from shared.domain.statistics import MIN_RETURNS_FOR_INFERENCE, ControlComparison

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Returns = Sequence[float] | npt.NDArray[np.float64]

EULER_MASCHERONI = 0.5772156649015329
_NORMAL = NormalDist()
_REPLICATION_CHUNK = 128  # replications whose resampling counts are held in memory at once


@dataclass(frozen=True, slots=True)
class Curve:
    """One agent's equity curve as floats, for the bootstrap."""

    agent_id: int
    name: str
    times: tuple[datetime, ...]
    equities: tuple[float, ...]


def newey_west_lags(observations: int) -> int:
    """Newey & West's (1994) rule of thumb for the HAC truncation lag: floor(4 (T / 100) ^ (2/9))."""
    return int(4.0 * (observations / 100.0) ** (2.0 / 9.0))


def sharpe_standard_error(returns: Returns, periods_per_year: float, lags: int | None = None) -> float | None:
    """Lo (2002) standard error of the annualised Sharpe ratio mean/std x sqrt(periods_per_year), by GMM.

    The moments (r - mu, (r - mu)^2 - sigma^2) get a Newey-West (Bartlett) long-run covariance with `lags`
    lags (default `newey_west_lags`); the delta method maps it to the Sharpe ratio. With iid normal returns it
    reduces to sqrt((1 + SR^2 / 2) / T). None with fewer than MIN_RETURNS_FOR_INFERENCE returns or zero variance.
    """
    import numpy as np

    r = np.asarray(returns, dtype=float)
    count = r.size
    if count < MIN_RETURNS_FOR_INFERENCE:
        return None
    mu = float(r.mean())
    variance = float(r.var())
    if variance <= 0:
        return None
    sigma = math.sqrt(variance)
    q = newey_west_lags(count) if lags is None else lags
    moments = np.column_stack((r - mu, (r - mu) ** 2 - variance))
    long_run = moments.T @ moments / count
    for lag in range(1, min(q, count - 1) + 1):
        gamma = moments[lag:].T @ moments[:-lag] / count
        long_run += (1.0 - lag / (q + 1.0)) * (gamma + gamma.T)
    gradient = np.array([1.0 / sigma, -mu / (2.0 * sigma**3)])
    sharpe_variance = float(gradient @ long_run @ gradient) / count
    if sharpe_variance <= 0:
        return None
    return math.sqrt(sharpe_variance * periods_per_year)


def expected_maximum_sharpe(trials: int, sharpe_variance: float) -> float:
    """E[max of `trials` Sharpe ratios with true value 0 and this cross-trial variance] (Bailey & LdP 2014, eq. 2).

    0 for a single trial: with nothing to choose from, there is no selection to deflate for.
    """
    if trials < 2 or sharpe_variance <= 0:
        return 0.0
    gamma = EULER_MASCHERONI
    spread = (1 - gamma) * _NORMAL.inv_cdf(1 - 1 / trials) + gamma * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(sharpe_variance) * spread


def deflated_sharpe_ratio(
    sharpe: float, *, observations: int, skewness: float, kurtosis: float, trials: int, sharpe_variance: float
) -> float | None:
    """Bailey & Lopez de Prado (2014), eq. 9, in per-cycle units (`sharpe` not annualised, `kurtosis` not excess):

    DSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)), SR0 = expected_maximum_sharpe(trials,
    sharpe_variance). None when the denominator is not positive (a degenerate distribution).
    """
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not spread > 0:
        return None
    threshold = expected_maximum_sharpe(trials, sharpe_variance)
    return _NORMAL.cdf((sharpe - threshold) * math.sqrt(observations - 1) / math.sqrt(spread))


def deflated_sharpe_probability(returns: Returns, *, trials: int, sharpe_variance: float) -> float | None:
    """`deflated_sharpe_ratio` of a return series: P(its true Sharpe beats the best of `trials` skill-less ones).

    SR = mean / std (ddof=1) per cycle; skewness and kurtosis are the population moments of the returns (as
    scipy.stats.skew / kurtosis(fisher=False) with bias=True); `sharpe_variance` is the variance of the trials'
    per-cycle Sharpes. None with fewer than MIN_RETURNS_FOR_INFERENCE returns or zero variance.
    """
    import numpy as np

    r = np.asarray(returns, dtype=float)
    count = r.size
    if count < MIN_RETURNS_FOR_INFERENCE:
        return None
    std = float(r.std(ddof=1))
    if std <= 0:
        return None
    centred = r - r.mean()
    moment2 = float(np.mean(centred**2))
    return deflated_sharpe_ratio(
        float(r.mean()) / std,
        observations=count,
        skewness=float(np.mean(centred**3)) / moment2**1.5,
        kurtosis=float(np.mean(centred**4)) / moment2**2,
        trials=trials,
        sharpe_variance=sharpe_variance,
    )


def _paired_equities(agent: Curve, control: Curve) -> tuple[list[float], list[float], bool]:
    """Both curves on the cycles they were both marked at (all of them in a normal race); True when that is
    every mark of both, so their log-growth columns can be shared with other comparisons."""
    if agent.times == control.times:
        return list(agent.equities), list(control.equities), True
    control_at = dict(zip(control.times, control.equities, strict=True))
    pairs = [(e, control_at[t]) for t, e in zip(agent.times, agent.equities, strict=True) if t in control_at]
    return [a for a, _ in pairs], [c for _, c in pairs], False


def _log_growth(equities: Sequence[float]) -> npt.NDArray[np.float64]:
    """Per-cycle log growth log(E_t / E_{t-1}); a step from 0 grows by 0, a step to 0 by a floor (not -inf)."""
    import numpy as np

    e = np.asarray(equities, dtype=float)
    previous, current = e[:-1], e[1:]
    ratio = np.divide(current, previous, out=np.ones_like(current), where=previous > 0)
    growth: npt.NDArray[np.float64] = np.log(np.maximum(ratio, 1e-300))
    return growth


def race_block_length(excess: list[npt.NDArray[np.float64]]) -> int:
    """The stationary bootstrap's mean block length for every comparison of one length: the largest Politis &
    White (2004, corrected 2009) optimal length, via arch, over the comparisons' paired excess returns, rounded
    up to whole cycles (>= 1).

    One length for all lets every comparison share one set of resampling draws (one draw instead of one per
    comparison: the 2-second budget); the largest keeps the most serial dependence, erring toward wider intervals.
    """
    import numpy as np
    from arch.bootstrap import optimal_block_length

    # A constant excess (an agent identical to its control) has no dependence to keep, and would divide by 0.
    varying = [x for x in excess if x.size > 1 and float(np.ptp(x)) > 0]
    if not varying:
        return 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = optimal_block_length(np.column_stack(varying))
    lengths = [float(v) for v in table["stationary"].to_numpy() if math.isfinite(v)]
    return max(1, math.ceil(max(lengths, default=1.0)))


def _resampled_log_growth(
    columns: npt.NDArray[np.float64], block_length: int, replications: int, seed: int
) -> npt.NDArray[np.float64]:
    """Sum of each column's resampled log growth for every replication (replications x columns).

    One arch StationaryBootstrap draw of cycle indices per replication, applied to every column at once: a
    replication's sum is (how often each cycle was drawn) @ column, so the columns are resampled jointly.
    """
    import numpy as np
    from arch.bootstrap import StationaryBootstrap

    cycles = columns.shape[0]
    sampler = StationaryBootstrap(block_length, np.arange(cycles), seed=np.random.default_rng(seed))
    sums = np.empty((replications, columns.shape[1]))
    draws = np.empty((_REPLICATION_CHUNK, cycles), dtype=np.int64)
    done = 0
    for filled, (positional, _) in enumerate(sampler.bootstrap(replications), start=1):
        draws[(filled - 1) % _REPLICATION_CHUNK] = positional[0]
        if filled % _REPLICATION_CHUNK == 0 or filled == replications:
            chunk = filled - done
            offsets = np.arange(chunk, dtype=np.int64)[:, None] * cycles
            counts = np.bincount((draws[:chunk] + offsets).ravel(), minlength=chunk * cycles)
            sums[done:filled] = counts.reshape(chunk, cycles).astype(float) @ columns
            done = filled
    return sums


def compare_with_controls(
    curves: Sequence[Curve],
    control_ids: Sequence[int],
    *,
    replications: int,
    confidence: float,
    seed: int,
) -> dict[int, tuple[ControlComparison, ...]]:
    """For every agent, its excess compounded return over each control other than itself, with a paired
    stationary-bootstrap percentile interval and P(beats); pairs with too few common returns are left out."""
    import numpy as np

    by_id = {curve.agent_id: curve for curve in curves}
    full_growth: dict[int, npt.NDArray[np.float64]] = {}

    def growth_of(curve: Curve, equities: list[float], full: bool) -> tuple[object, npt.NDArray[np.float64]]:
        if not full:
            return object(), _log_growth(equities)  # a key of its own: this column is not shared
        if curve.agent_id not in full_growth:
            full_growth[curve.agent_id] = _log_growth(equities)
        return curve.agent_id, full_growth[curve.agent_id]

    pairs: list[tuple[Curve, Curve, object, npt.NDArray[np.float64], object, npt.NDArray[np.float64]]] = []
    for agent in curves:
        for control_id in control_ids:
            if control_id == agent.agent_id:
                continue
            control = by_id[control_id]
            agent_equity, control_equity, full = _paired_equities(agent, control)
            if len(agent_equity) - 1 < MIN_RETURNS_FOR_INFERENCE:
                continue
            pairs.append(
                (agent, control, *growth_of(agent, agent_equity, full), *growth_of(control, control_equity, full))
            )

    # Pairs of one length share one block length, one set of draws and one matrix product over their columns.
    groups: dict[int, list[int]] = {}
    for i, pair in enumerate(pairs):
        groups.setdefault(pair[3].size, []).append(i)
    alpha = 1.0 - confidence
    results: dict[int, list[ControlComparison]] = {curve.agent_id: [] for curve in curves}
    for _, members in sorted(groups.items()):
        block = race_block_length([np.expm1(pairs[i][3]) - np.expm1(pairs[i][5]) for i in members])
        column_of: dict[object, int] = {}
        columns: list[npt.NDArray[np.float64]] = []
        for i in members:
            for key, growth in ((pairs[i][2], pairs[i][3]), (pairs[i][4], pairs[i][5])):
                if key not in column_of:
                    column_of[key] = len(columns)
                    columns.append(growth)
        sums = _resampled_log_growth(np.column_stack(columns), block, replications, seed)
        for i in members:
            agent, control, agent_key, agent_growth, control_key, control_growth = pairs[i]
            excess = np.exp(sums[:, column_of[agent_key]]) - np.exp(sums[:, column_of[control_key]])
            low, high = np.quantile(excess, [alpha / 2.0, 1.0 - alpha / 2.0])
            beats = (np.count_nonzero(excess > 0) + 0.5 * np.count_nonzero(excess == 0)) / replications
            observed = math.exp(float(agent_growth.sum())) - math.exp(float(control_growth.sum()))
            results[agent.agent_id].append(
                ControlComparison(
                    control_agent_id=control.agent_id,
                    control_name=control.name,
                    excess_return=observed,
                    low=float(low),
                    high=float(high),
                    probability_beats=float(beats),
                    significant=bool(low > 0 or high < 0),
                    paired_returns=int(agent_growth.size),
                    block_length=block,
                )
            )
    order = {control_id: n for n, control_id in enumerate(control_ids)}
    return {
        agent_id: tuple(sorted(found, key=lambda c: order[c.control_agent_id])) for agent_id, found in results.items()
    }
