"""Response models of `GET /api/agents/{id}/stats`: every statistic of one agent, each with its definition.

Returns and ratios are fractions (0.05 = 5%) as JSON numbers; money is an exact decimal string (USD);
durations are seconds. "Annualised" scales by the race's cycles per year (8,760 for hourly cycles). A figure
that cannot be computed from the points available is null, never a made-up 0. The formulas, sampling and
minimum numbers of points are in docs/statistics.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, PlainSerializer, WithJsonSchema

from shared.api.headline_schemas import ExcessReturnPublic, StatisticsStatusPublic
from shared.api.schemas import Money, _Public
from shared.domain.statistics import AgentStatistics, ControlComparison

Seconds = Annotated[
    timedelta,
    PlainSerializer(lambda value: value.total_seconds(), return_type=float),
    WithJsonSchema({"type": "number", "description": "A duration in seconds."}),
]


class TradeStatsPublic(_Public):
    """Closed round trips: each sale matched first-in first-out with the lots bought before it, per symbol."""

    round_trips: int = Field(description="Closed lots (a sale closing parts of two lots is two round trips).")
    win_rate: float | None = Field(description="Share of round trips with net P&L > 0 (0..1); null without any.")
    profit_factor: float | None = Field(
        description="Sum of winning P&L / |sum of losing P&L|; null without a losing round trip."
    )
    average_win: Money | None = Field(description="Mean net P&L of winning round trips, USD, fees included.")
    average_loss: Money | None = Field(description="Mean net P&L of losing round trips, USD (negative).")
    biggest_win: Money | None = Field(description="Largest round-trip net P&L, USD.")
    biggest_loss: Money | None = Field(description="Most negative round-trip net P&L, USD.")
    average_holding: Seconds | None = Field(description="Mean time from a lot's buy to its closing sale, seconds.")


class CostStatsPublic(_Public):
    """What it cost to think (the inference cost recorded with each decision), beside the return it earned."""

    inference_cost_usd: Money = Field(description="Total recorded inference cost, USD (unknown counted as 0).")
    cost_per_decision: Money | None = Field(description="Inference cost / decisions, USD; null without decisions.")
    gross_total_return: float | None = Field(description="Last equity / first equity - 1 (fraction).")
    net_total_return: float | None = Field(
        description="(Last equity - inference cost) / first equity - 1 (fraction): the return after thinking."
    )
    usd_per_return_point: Money | None = Field(
        description="Inference USD per percentage point of gross return; null unless the gross return is > 0."
    )


class DisciplineStatsPublic(_Public):
    """How often the agent failed to answer, fell back to HOLD, or asked for orders the rules refused."""

    decisions: int = Field(description="Recorded decisions.")
    parse_failure_share: float | None = Field(
        description="Share of decisions whose answer could not be parsed (invalid output); null without decisions."
    )
    hold_shares: dict[str, float] = Field(
        description="Fallback HOLD code (timeout, rate_limited, circuit_open, invalid_output, ...) -> share of "
        "all decisions."
    )
    rejected_order_shares: dict[str, float] = Field(
        description="Rejection reason (below_min_notional, insufficient_cash, ...) -> share of all orders asked for."
    )
    latency_mean_ms: float | None = Field(description="Mean model latency over measured decisions, milliseconds.")
    latency_p95_ms: float | None = Field(description="95th percentile of the same latencies, milliseconds.")


class ReliabilityBinPublic(_Public):
    """One confidence bin [low, high) of the reliability table (the last bin includes 1)."""

    low: float = Field(description="Lower edge of the confidence bin.")
    high: float = Field(description="Upper edge of the confidence bin.")
    count: int = Field(description="Scored decisions whose confidence fell in the bin.")
    mean_confidence: float = Field(description="Mean stated confidence of those decisions.")
    hit_rate: float = Field(description="Share of those decisions whose outcome was a hit (0..1).")


class CalibrationStatsPublic(_Public):
    """Stated confidence against the outcome: a trading decision is a hit when the portfolio's marked P&L
    `horizon_cycles` cycles later is positive (docs/statistics.md defines it exactly)."""

    horizon_cycles: int = Field(description="Cycles after the decision at which its outcome is read.")
    scored: int = Field(description="Decisions that traded, stated a confidence and have a mark that much later.")
    brier: float | None = Field(description="Mean (confidence - outcome)^2 over scored decisions; 0 is perfect.")
    bins: list[ReliabilityBinPublic] = Field(description="The non-empty bins of ten equal-width bins on [0, 1].")


class ControlComparisonPublic(ExcessReturnPublic):
    """The excess over one control, with what the bootstrap rests on."""

    paired_returns: int = Field(description="Paired per-cycle returns the comparison rests on.")
    block_length: int = Field(description="Mean block length of the stationary bootstrap, in cycles.")

    @classmethod
    def from_control(cls, comparison: ControlComparison) -> ControlComparisonPublic:
        base = ExcessReturnPublic.from_comparison(comparison).model_dump()
        return cls(**base, paired_returns=comparison.paired_returns, block_length=comparison.block_length)


class AgentStatisticsPublic(_Public):
    """Every figure of one agent, from its equity marks (one per cycle), trades and decisions."""

    observations: int = Field(description="Equity marks read (one per cycle).")
    returns: int = Field(description="Per-cycle returns the ratios rest on (observations - 1).")
    total_return: float | None = Field(description="Last equity / first equity - 1 (fraction).")
    annualised_return: float | None = Field(
        description="(1 + total return) ^ (cycles per year / returns) - 1 (fraction)."
    )
    annualised_volatility: float | None = Field(
        description="Sample std of per-cycle returns x sqrt(cycles per year) (fraction)."
    )
    sharpe: float | None = Field(
        description="Mean / sample std of per-cycle returns x sqrt(cycles per year); risk-free rate 0."
    )
    sortino: float | None = Field(
        description="Mean per-cycle return / downside deviation (target 0) x sqrt(cycles per year)."
    )
    calmar: float | None = Field(description="Annualised return / max drawdown; null when there was no drawdown.")
    max_drawdown: float = Field(description="Largest fall of equity from a running peak, fraction of the peak.")
    max_drawdown_duration: Seconds | None = Field(
        description="Longest time from a peak until equity regained it (or until the last mark), seconds."
    )
    sharpe_standard_error: float | None = Field(
        description="Standard error of the annualised Sharpe under serial correlation (Lo 2002)."
    )
    deflated_sharpe_probability: float | None = Field(
        description="Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): probability that the true Sharpe is "
        "above 0 given how many agents were raced (0..1)."
    )
    trades: TradeStatsPublic = Field(description="Closed round trips (FIFO lots, fees included).")
    turnover: float | None = Field(description="Traded notional per year / mean equity (times per year).")
    exposure: float | None = Field(description="Share of marks with something invested (equity != cash), 0..1.")
    fees_share_of_start: float = Field(description="Trading fees paid / starting cash (fraction).")
    cost: CostStatsPublic = Field(description="Inference cost beside the gross and net return.")
    discipline: DisciplineStatsPublic = Field(description="Parse failures, fallback HOLDs, rejections, latency.")
    calibration: CalibrationStatsPublic = Field(description="Brier score and reliability table of the confidence.")
    versus_controls: list[ControlComparisonPublic] = Field(
        description="Excess return over each control agent (itself excluded), with 95% bootstrap intervals."
    )

    @classmethod
    def from_statistics(cls, statistics: AgentStatistics) -> AgentStatisticsPublic:
        # Nested dataclasses map by field name; the comparisons rename `excess_return` to `value`.
        public = cls.model_validate(
            {
                **{name: getattr(statistics, name) for name in cls.model_fields if name != "versus_controls"},
                "versus_controls": [],
            },
            from_attributes=True,
        )
        controls = [ControlComparisonPublic.from_control(c) for c in statistics.versus_controls]
        return public.model_copy(update={"versus_controls": controls})


class AgentStatsPublic(_Public):
    """One agent's statistics as last computed (after the latest cycle's equity marks landed)."""

    agent_id: int = Field(description="The agent's numeric id.")
    name: str = Field(description="The agent's name.")
    status: StatisticsStatusPublic = Field(description="Which computed set this is, or why figures are missing.")
    statistics: AgentStatisticsPublic | None = Field(
        description="Null until the agent's first equity mark has been measured (`status.note` says why)."
    )
