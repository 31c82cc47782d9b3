"""Statistics for tests: a realistic `AgentStatistics` built by hand, and an in-memory `StatisticsRepository`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.domain.model import Agent
from shared.domain.statistics import (
    AgentInputs,
    AgentStatistics,
    CalibrationStats,
    ControlComparison,
    CostStats,
    DisciplineStats,
    ReliabilityBin,
    TradeStats,
)
from shared.services.statistics_ports import RaceHistory, StatisticsStamp, StoredStatistics


def sample_statistics(agent_id: int, *, controls: Mapping[int, str] | None = None, **overrides: Any) -> AgentStatistics:
    """An agent's figures as the computation would report them after a few weeks of hourly cycles."""
    comparisons = tuple(
        ControlComparison(
            control_agent_id=control_id,
            control_name=name,
            excess_return=0.0425 - 0.01 * i,
            low=-0.0123 + 0.001 * i,
            high=0.0931,
            probability_beats=0.87,
            significant=False,
            paired_returns=503,
            block_length=8,
        )
        for i, (control_id, name) in enumerate(sorted((controls or {}).items()))
    )
    statistics = AgentStatistics(
        agent_id=agent_id,
        name=f"agent {agent_id}",
        observations=504,
        returns=503,
        total_return=0.0525,
        annualised_return=1.4301,
        annualised_volatility=0.4123,
        sharpe=1.8712,
        sortino=2.6034,
        calmar=9.12,
        max_drawdown=0.1568,
        max_drawdown_duration=timedelta(hours=113),
        sharpe_standard_error=0.91,
        deflated_sharpe_probability=0.62,
        trades=TradeStats(
            round_trips=14,
            win_rate=0.5714,
            profit_factor=1.92,
            average_win=Decimal("812.40000000"),
            average_loss=Decimal("-553.12500000"),
            biggest_win=Decimal("2410.00000000"),
            biggest_loss=Decimal("-1200.50000000"),
            average_holding=timedelta(hours=30, minutes=30),
        ),
        turnover=12.5,
        exposure=0.83,
        fees_share_of_start=0.0034,
        cost=CostStats(
            inference_cost_usd=Decimal("1.23450000"),
            cost_per_decision=Decimal("0.00244940"),
            gross_total_return=0.0525,
            net_total_return=0.05248765,
            usd_per_return_point=Decimal("0.23514286"),
        ),
        discipline=DisciplineStats(
            decisions=504,
            parse_failure_share=0.0119,
            hold_shares={"timeout": 0.004, "invalid_output": 0.0119},
            rejected_order_shares={"below_min_notional": 0.02},
            latency_mean_ms=812.5,
            latency_p95_ms=2012.0,
        ),
        calibration=CalibrationStats(
            horizon_cycles=24,
            scored=120,
            brier=0.231,
            bins=(ReliabilityBin(0.5, 0.6, 70, 0.55, 0.51), ReliabilityBin(0.6, 0.7, 50, 0.64, 0.6)),
        ),
        versus_controls=comparisons,
    )
    return replace(statistics, **overrides)


T_STATS = datetime(2024, 3, 2, 23, tzinfo=UTC)


@dataclass
class FakeStatisticsRepository:
    """`StatisticsRepository` in memory: a history to compute from, and the stored set."""

    history: RaceHistory = field(default_factory=lambda: RaceHistory((), (), None))
    stored: StoredStatistics | None = None
    refuse_save: bool = False
    calls: list[str] = field(default_factory=list)

    def with_agents(self, agents: list[tuple[Agent, AgentInputs]]) -> FakeStatisticsRepository:
        latest = max((i.marks[-1].at for _, i in agents if i.marks), default=None)
        self.history = RaceHistory(tuple(a for a, _ in agents), tuple(i for _, i in agents), latest)
        return self

    def latest_mark_time(self) -> datetime | None:
        self.calls.append("latest_mark_time")
        return self.history.latest_mark

    def race_history(self) -> RaceHistory:
        self.calls.append("race_history")
        return self.history

    def save(self, *, computed_for: datetime, computed_at: datetime, statistics: Mapping[int, AgentStatistics]) -> bool:
        self.calls.append("save")
        if self.refuse_save or (self.stored is not None and self.stored.computed_for > computed_for):
            return False
        self.stored = StoredStatistics(computed_for, computed_at, dict(statistics))
        return True

    def stamp(self) -> StatisticsStamp | None:
        self.calls.append("stamp")
        return self.stored.stamp if self.stored is not None else None

    def latest(self) -> StoredStatistics | None:
        self.calls.append("latest")
        return self.stored
