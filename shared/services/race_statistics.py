"""Use case: compute every agent's statistics once per cycle and store them for the API.

Called after a cycle's equity marks land (the equity job, the local race through it) and once at the end of a
backtest; never on a request. The computation itself is the domain's `compute_race_statistics` (pure,
seeded); this service decides whether there is anything new, which agents are the controls, and stores the
set in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.model import Agent, AgentProvider
from shared.domain.statistics import AgentInputs, AgentStatistics, ControlComparison
from shared.services.ports import Clock
from shared.services.seed import CONTROL_MODELS
from shared.services.statistics_ports import StatisticsRepository

logger = logging.getLogger(__name__)

MINUTES_PER_YEAR = 365 * 24 * 60  # crypto trades every hour of every day: a year is 8,760 hourly cycles
BUY_AND_HOLD_MODEL = "buy_and_hold"
BUY_AND_HOLD_SYMBOL = "BTC"

ComputeStatistics = Callable[..., Mapping[int, AgentStatistics]]


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    """What a refresh did: `computed` agents for the mark at `computed_for`, or `skipped` with why."""

    computed_for: datetime | None
    computed: int = 0
    controls: tuple[int, ...] = ()
    duration_s: float = 0.0
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed_for": self.computed_for.isoformat() if self.computed_for else None,
            "computed": self.computed,
            "controls": list(self.controls),
            "duration_s": round(self.duration_s, 3),
            "skipped": self.skipped,
        }


def periods_per_year(cycle_minutes: int) -> float:
    """Cycles in a year of the race's cycle length: the annualisation factor of every ratio."""
    if cycle_minutes < 1:
        raise ValueError("cycle_minutes must be at least 1")
    return MINUTES_PER_YEAR / cycle_minutes


def control_ids(agents: Iterable[Agent]) -> tuple[int, ...]:
    """The control agents: baselines whose model is one of `CONTROL_MODELS`, active or not, by id."""
    return tuple(sorted(a.id for a in agents if a.provider == AgentProvider.BASELINE and a.model in CONTROL_MODELS))


def buy_and_hold_control_id(agents: Iterable[Agent]) -> int | None:
    """The buy-and-hold control the leaderboard compares with: the BTC one, else the first buy-and-hold."""
    candidates = sorted(
        (a for a in agents if a.provider == AgentProvider.BASELINE and a.model == BUY_AND_HOLD_MODEL),
        key=lambda a: (str(a.params.get("symbol", BUY_AND_HOLD_SYMBOL)).upper() != BUY_AND_HOLD_SYMBOL, a.id),
    )
    return candidates[0].id if candidates else None


def refresh_race_statistics(
    *,
    repository: StatisticsRepository,
    starting_cash: Decimal,
    cycle_minutes: int,
    clock: Clock,
    force: bool = False,
    compute: ComputeStatistics | None = None,
) -> StatisticsReport:
    """Compute and store every agent's statistics when an equity mark newer than the stored set exists
    (or always, with `force`). Running it again for the same marks does nothing."""
    latest = repository.latest_mark_time()
    if latest is None:
        return StatisticsReport(None, skipped="no equity marks yet")
    stamp = repository.stamp()
    if not force and stamp is not None and stamp.computed_for >= latest:
        return StatisticsReport(stamp.computed_for, skipped="already computed for the latest mark")

    started = time.perf_counter()
    history = repository.race_history()
    controls = control_ids(history.agents)
    statistics = _compute(compute)(
        _marked(history.inputs),
        control_ids=[c for c in controls if _has_marks(history.inputs, c)],
        starting_cash=starting_cash,
        periods_per_year=periods_per_year(cycle_minutes),
    )
    computed_for = history.latest_mark or latest
    saved = repository.save(computed_for=computed_for, computed_at=clock.now(), statistics=statistics)
    duration = time.perf_counter() - started
    if not saved:
        return StatisticsReport(computed_for, duration_s=duration, skipped="a newer set was stored meanwhile")
    logger.info("statistics computed for %s: %d agents in %.2fs", computed_for.isoformat(), len(statistics), duration)
    return StatisticsReport(computed_for, len(statistics), controls, duration)


def _compute(compute: ComputeStatistics | None) -> ComputeStatistics:
    if compute is not None:
        return compute
    # numpy and arch load here, in the job that needs them, never when the app starts.
    from shared.domain.race_statistics import compute_race_statistics

    return compute_race_statistics


def _marked(inputs: Sequence[AgentInputs]) -> list[AgentInputs]:
    # An agent added to the race but not marked yet has nothing to measure: it appears once it is marked.
    return [i for i in inputs if i.marks]


def _has_marks(inputs: Sequence[AgentInputs], agent_id: int) -> bool:
    return any(i.agent_id == agent_id and i.marks for i in inputs)


@dataclass(frozen=True, slots=True)
class Headline:
    """The figures the leaderboard shows beside equity (the full set is `AgentStatistics`)."""

    sharpe: float | None
    max_drawdown: float | None
    win_rate: float | None
    net_return: float | None
    excess_over_buy_and_hold: ControlComparison | None


def headline(statistics: AgentStatistics, *, buy_and_hold_id: int | None) -> Headline:
    """An agent's headline figures; the excess is over the buy-and-hold control (None for that control itself)."""
    excess = next((c for c in statistics.versus_controls if c.control_agent_id == buy_and_hold_id), None)
    return Headline(
        sharpe=statistics.sharpe,
        max_drawdown=statistics.max_drawdown if statistics.observations else None,
        win_rate=statistics.trades.win_rate,
        net_return=statistics.cost.net_total_return,
        excess_over_buy_and_hold=excess,
    )
