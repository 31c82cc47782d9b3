"""Inference: the paired stationary bootstrap against controls, Lo's Sharpe standard error, the deflated Sharpe."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats as scipy_stats  # type: ignore[import-untyped]
from statsmodels.stats.sandwich_covariance import S_hac_simple  # type: ignore[import-untyped]

from shared.domain.significance import (
    Curve,
    compare_with_controls,
    deflated_sharpe_probability,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    newey_west_lags,
    race_block_length,
    sharpe_standard_error,
)
from tests.unit.statistics_fixtures import HOUR, T0


def curve(
    agent_id: int, returns: Sequence[float] | npt.NDArray[np.float64], *, skip: frozenset[int] = frozenset()
) -> Curve:
    equities = [100_000.0]
    for r in returns:
        equities.append(equities[-1] * (1.0 + float(r)))
    kept = [i for i in range(len(equities)) if i not in skip]
    return Curve(agent_id, f"agent-{agent_id}", tuple(T0 + i * HOUR for i in kept), tuple(equities[i] for i in kept))


def edge_race(seed: int, cycles: int = 500, edge: float = 0.001) -> tuple[Curve, Curve, float]:
    """An agent that earns the control's return plus a known edge per cycle (plus a little noise of its own)."""
    rng = np.random.default_rng(seed)
    control = rng.normal(0.0, 0.005, cycles)
    agent = control + edge + rng.normal(0.0, 0.001, cycles)
    truth = (1.0 + edge) ** cycles - 1.0  # expected compounded excess: the control's own factor has mean 1
    return curve(1, agent), curve(2, control), truth


def compare(curves: Sequence[Curve], controls: Sequence[int], seed: int = 2024, replications: int = 1000):  # type: ignore[no-untyped-def]
    return compare_with_controls(curves, controls, replications=replications, confidence=0.95, seed=seed)


def test_known_large_edge_interval_contains_truth_and_excludes_zero() -> None:
    agent, control, truth = edge_race(11)
    (result,) = compare([agent, control], [2])[1]
    assert result.control_agent_id == 2
    assert result.control_name == "agent-2"
    assert result.paired_returns == 500
    assert result.low <= truth <= result.high
    assert result.low > 0
    assert result.significant
    assert result.probability_beats == 1.0
    assert result.excess_return == pytest.approx(agent.equities[-1] / 1e5 - control.equities[-1] / 1e5)
    # Seen from the control's side, the same gap is significantly negative.
    (reverse,) = compare([agent, control], [1])[2]
    assert reverse.high < 0
    assert reverse.significant
    assert reverse.probability_beats == 0.0


def test_interval_coverage_is_near_nominal() -> None:
    covered = 0
    for trial in range(30):
        agent, control, truth = edge_race(100 + trial)
        (result,) = compare([agent, control], [2], seed=trial, replications=400)[1]
        covered += result.low <= truth <= result.high
    assert covered >= 25  # 95% nominal: 28.5 expected of 30


def test_identical_series_include_zero_and_are_a_coin_flip() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, 300)
    (result,) = compare([curve(1, returns), curve(2, returns)], [2])[1]
    assert result.low <= 0.0 <= result.high
    assert not result.significant
    assert result.excess_return == 0.0
    assert result.probability_beats == 0.5
    assert result.block_length == 1  # nothing varies, nothing to keep


def test_noise_without_edge_is_not_significant() -> None:
    rng = np.random.default_rng(5)
    common = rng.normal(0.0, 0.01, 800)
    agent = common + rng.normal(0.0, 0.002, 800)
    (result,) = compare([curve(1, agent), curve(2, common)], [2])[1]
    assert result.low < 0.0 < result.high
    assert not result.significant
    assert 0.05 < result.probability_beats < 0.95


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    agent, control, _ = edge_race(21)
    first = compare([agent, control], [2], seed=7)
    assert compare([agent, control], [2], seed=7) == first
    other = compare([agent, control], [2], seed=8)[1][0]
    assert (other.low, other.high) != (first[1][0].low, first[1][0].high)


def test_every_agent_is_compared_with_every_control_but_itself() -> None:
    rng = np.random.default_rng(9)
    curves = [curve(i, rng.normal(0.0, 0.01, 100)) for i in (1, 2, 3, 4)]
    results = compare(curves, [3, 2])
    assert [c.control_agent_id for c in results[1]] == [3, 2]  # in control_ids order
    assert [c.control_agent_id for c in results[2]] == [3]
    assert [c.control_agent_id for c in results[3]] == [2]
    assert [c.control_agent_id for c in results[4]] == [3, 2]


def test_pairs_use_common_cycles_and_too_few_are_left_out() -> None:
    rng = np.random.default_rng(4)
    control = curve(2, rng.normal(0.0, 0.01, 60))
    gappy = curve(1, rng.normal(0.0, 0.01, 60), skip=frozenset({10, 11, 30}))
    assert compare([gappy, control], [2])[1][0].paired_returns == 61 - 3 - 1
    short = curve(3, rng.normal(0.0, 0.01, 5))
    assert compare([short, control], [2])[3] == ()


def test_block_length_follows_serial_dependence() -> None:
    rng = np.random.default_rng(12)
    noise = rng.normal(size=3000)
    persistent = np.zeros(3000)
    for t in range(1, 3000):
        persistent[t] = 0.8 * persistent[t - 1] + noise[t]
    assert race_block_length([rng.normal(size=3000)]) <= 3
    assert race_block_length([persistent]) > 5
    assert race_block_length([rng.normal(size=3000), persistent]) == race_block_length([persistent])
    assert race_block_length([np.zeros(100)]) == 1


def test_lo_standard_error_is_the_iid_one_without_autocorrelation() -> None:
    returns = np.random.default_rng(1).normal(0.0005, 0.01, 20_000)
    sharpe = returns.mean() / returns.std()
    iid = math.sqrt((1 + sharpe**2 / 2) / returns.size) * math.sqrt(8760)
    assert sharpe_standard_error(returns, 8760) == pytest.approx(iid, rel=0.05)


def test_lo_standard_error_grows_with_positive_autocorrelation() -> None:
    rng = np.random.default_rng(2)
    shocks = rng.normal(0.0005, 0.01, 20_000)
    ar = np.zeros_like(shocks)
    for t in range(1, ar.size):
        ar[t] = 0.5 * ar[t - 1] + shocks[t]
    sharpe = ar.mean() / ar.std()
    iid = math.sqrt((1 + sharpe**2 / 2) / ar.size) * math.sqrt(8760)
    lo = sharpe_standard_error(ar, 8760)
    assert lo is not None
    assert lo > 1.4 * iid  # (1 + 0.5) / (1 - 0.5) = 3x the variance of the mean


def test_lo_standard_error_matches_statsmodels_hac() -> None:
    rng = np.random.default_rng(6)
    r = rng.standard_t(5, 3000) * 0.01 + 0.0003
    mu, variance = r.mean(), r.var()
    moments = np.column_stack((r - mu, (r - mu) ** 2 - variance))
    lags = newey_west_lags(r.size)
    long_run = S_hac_simple(moments, nlags=lags) / r.size
    gradient = np.array([1 / math.sqrt(variance), -mu / (2 * variance**1.5)])
    reference = math.sqrt(gradient @ long_run @ gradient / r.size * 8760)
    assert sharpe_standard_error(r, 8760) == pytest.approx(reference, rel=1e-10)
    assert sharpe_standard_error(r[:9], 8760) is None
    assert sharpe_standard_error(np.full(50, 0.01), 8760) is None


def test_deflated_sharpe_reproduces_bailey_and_lopez_de_prado_example() -> None:
    # Their numerical example: annualised SR 2.5 over 5 years of daily data (T = 1250), skewness -3, kurtosis
    # 10, 100 trials whose annualised Sharpes have variance 0.5: E[max SR] = 0.1132 a day and DSR = 0.9004.
    daily_variance = 0.5 / 250
    assert expected_maximum_sharpe(100, daily_variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(
        2.5 / math.sqrt(250), observations=1250, skewness=-3, kurtosis=10, trials=100, sharpe_variance=daily_variance
    )
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_expected_maximum_sharpe_approximates_the_maximum_of_normals() -> None:
    draws = np.random.default_rng(8).standard_normal((200_000, 20)).max(axis=1).mean()
    assert expected_maximum_sharpe(20, 1.0) == pytest.approx(draws, rel=0.03)
    assert expected_maximum_sharpe(1, 1.0) == 0.0


def test_deflated_sharpe_falls_as_trials_grow() -> None:
    returns = np.random.default_rng(10).normal(0.0004, 0.01, 2000)
    found = [deflated_sharpe_probability(returns, trials=n, sharpe_variance=0.0004) for n in (1, 2, 5, 20, 100)]
    values = [v for v in found if v is not None]
    assert len(values) == len(found)
    assert values == sorted(values, reverse=True)
    assert len(set(values)) == len(values)
    # One trial: nothing to deflate for, the probabilistic Sharpe ratio against 0, here from scipy's moments.
    sharpe = returns.mean() / returns.std(ddof=1)
    skew = scipy_stats.skew(returns)
    kurt = scipy_stats.kurtosis(returns, fisher=False)
    psr = scipy_stats.norm.cdf(
        sharpe * math.sqrt(returns.size - 1) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    )
    assert values[0] == pytest.approx(psr, rel=1e-9)
    assert deflated_sharpe_probability(returns[:5], trials=3, sharpe_variance=0.01) is None
