"""The one entry point of the race statistics: every agent's figures, controls compared, from stored facts.

Pure and deterministic (a seeded bootstrap); called when a cycle lands, never on the request path. The inference
part (bootstrap, Lo's SE, deflated Sharpe) needs numpy and arch and imports them only when called.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from decimal import Decimal

from shared.domain.discipline import calibration_stats, cost_stats, discipline_stats
from shared.domain.performance import exposure, return_figures, sample_std, simple_returns, turnover
from shared.domain.statistics import (
    MIN_RETURNS_FOR_DISPERSION,
    AgentInputs,
    AgentStatistics,
)
from shared.domain.statistics_validation import check_agent_inputs
from shared.domain.trade_statistics import trade_stats

_EQUITY = operator.attrgetter("equity")
_AT = operator.attrgetter("at")


def _check_arguments(
    agents: Sequence[AgentInputs],
    control_ids: Sequence[int],
    starting_cash: Decimal,
    periods_per_year: float,
    bootstrap_replications: int,
    confidence: float,
    calibration_horizon: int,
) -> None:
    ids = [a.agent_id for a in agents]
    if len(set(ids)) != len(ids):
        raise ValueError(f"agent ids must be unique, got {sorted(ids)}")
    if len(set(control_ids)) != len(control_ids):
        raise ValueError(f"control ids must be unique, got {list(control_ids)}")
    unknown = sorted(set(control_ids) - set(ids))
    if unknown:
        raise ValueError(f"control ids {unknown} are not among the agents {sorted(ids)}")
    if not isinstance(starting_cash, Decimal) or not starting_cash.is_finite() or starting_cash <= 0:
        raise ValueError(f"starting_cash must be a positive finite Decimal, got {starting_cash!r}")
    if not math.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if bootstrap_replications < 1:
        raise ValueError(f"bootstrap_replications must be at least 1, got {bootstrap_replications}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    if calibration_horizon < 1:
        raise ValueError(f"calibration_horizon must be at least 1 cycle, got {calibration_horizon}")


def compute_race_statistics(
    agents: Sequence[AgentInputs],
    *,
    control_ids: Sequence[int],
    starting_cash: Decimal,
    periods_per_year: float,
    seed: int = 2024,
    bootstrap_replications: int = 1000,
    confidence: float = 0.95,
    calibration_horizon: int = 24,
) -> dict[int, AgentStatistics]:
    """Every agent's statistics keyed by agent id; each control is compared with every other agent.

    The deflated Sharpe counts every agent with a Sharpe ratio as one trial (controls included: they are raced
    and ranked like the rest). Raises ValueError for input that cannot be trusted (naive or unsorted times,
    negative money, unknown control ids, ...), with a message naming the agent and the item.
    """
    from shared.domain.significance import (
        Curve,
        compare_with_controls,
        deflated_sharpe_probability,
        sharpe_standard_error,
    )

    _check_arguments(
        agents, control_ids, starting_cash, periods_per_year, bootstrap_replications, confidence, calibration_horizon
    )
    for agent in agents:
        check_agent_inputs(agent)

    # Round trips first: an oversold fill is bad input, to be refused before any expensive work.
    trades = {a.agent_id: trade_stats(a.fills, agent=f"agent {a.agent_id} ({a.name})") for a in agents}
    equities = {a.agent_id: list(map(float, map(_EQUITY, a.marks))) for a in agents}
    returns = {agent_id: simple_returns(curve) for agent_id, curve in equities.items()}
    figures = {
        a.agent_id: return_figures(a.marks, equities[a.agent_id], returns[a.agent_id], periods_per_year) for a in agents
    }
    # The deflated Sharpe's trials: every agent with a Sharpe ratio, in per-cycle units.
    per_cycle_sharpes = [f.sharpe / math.sqrt(periods_per_year) for f in figures.values() if f.sharpe is not None]
    sharpe_variance = (
        sample_std(per_cycle_sharpes) ** 2 if len(per_cycle_sharpes) >= MIN_RETURNS_FOR_DISPERSION else 0.0
    )
    comparisons = compare_with_controls(
        [Curve(a.agent_id, a.name, tuple(map(_AT, a.marks)), tuple(equities[a.agent_id])) for a in agents],
        control_ids,
        replications=bootstrap_replications,
        confidence=confidence,
        seed=seed,
    )

    results: dict[int, AgentStatistics] = {}
    for agent in agents:
        agent_figures = figures[agent.agent_id]
        agent_returns = returns[agent.agent_id]
        results[agent.agent_id] = AgentStatistics(
            agent_id=agent.agent_id,
            observations=len(agent.marks),
            total_return=agent_figures.total_return,
            annualised_return=agent_figures.annualised_return,
            annualised_volatility=agent_figures.annualised_volatility,
            sharpe=agent_figures.sharpe,
            sortino=agent_figures.sortino,
            calmar=agent_figures.calmar,
            max_drawdown=agent_figures.max_drawdown,
            max_drawdown_duration=agent_figures.max_drawdown_duration,
            sharpe_standard_error=sharpe_standard_error(agent_returns, periods_per_year),
            deflated_sharpe_probability=deflated_sharpe_probability(
                agent_returns, trials=len(per_cycle_sharpes), sharpe_variance=sharpe_variance
            ),
            trades=trades[agent.agent_id],
            turnover=turnover(equities[agent.agent_id], agent.fills, periods_per_year),
            exposure=exposure(agent.marks),
            fees_share_of_start=float(sum((f.fee for f in agent.fills), Decimal(0)) / starting_cash),
            cost=cost_stats(agent.decisions, agent.marks),
            discipline=discipline_stats(agent.decisions),
            calibration=calibration_stats(agent.decisions, agent.marks, equities[agent.agent_id], calibration_horizon),
            versus_controls=comparisons[agent.agent_id],
            name=agent.name,
            returns=len(agent_returns),
        )
    return results
