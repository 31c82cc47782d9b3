"""What the race statistics read and what they report: frozen value types, no I/O, no computation.

The inputs are plain facts a repository can fill from stored rows (equity marks, executed trades, decision
metadata); the outputs are what the API serves. Every figure is defined, with its formula and its minimum number
of points, in docs/statistics.md; a figure that cannot be computed from the points available is None, never a
made-up 0. Money stays Decimal (USD); ratios and returns are floats (fractions: 0.05 is 5%).

The computation lives in `shared.domain.race_statistics.compute_race_statistics` (the one entry point), with its
parts in `performance`, `trade_statistics`, `discipline` and `significance` (numpy/arch, imported lazily);
bad input is refused by `statistics_validation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.domain.model import Side

# Below these counts a figure is None (or the comparison is left out): each is documented in docs/statistics.md.
MIN_RETURNS_FOR_DISPERSION = 2  # a sample standard deviation needs two returns
MIN_RETURNS_FOR_INFERENCE = 10  # Lo's SE, the deflated Sharpe and the bootstrap need a series, not a handful
RELIABILITY_BINS = 10


# ---------------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class EquityMark:
    """The portfolio marked to market at one cycle time: `equity` = cash + positions at that time's prices."""

    at: datetime  # UTC-aware; marks of one agent strictly ascending
    equity: Decimal  # USD, >= 0
    cash: Decimal  # USD, >= 0; equity == cash means nothing is invested


@dataclass(frozen=True, slots=True)
class Fill:
    """One executed trade, as the execution recorded it (price after slippage, fee in USD)."""

    at: datetime  # UTC-aware; fills of one agent in execution order (times non-decreasing)
    symbol: str
    side: Side
    quantity: Decimal  # base units, > 0
    price: Decimal  # USD per unit, > 0
    fee: Decimal  # USD, >= 0


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    """What one recorded decision says about the agent's discipline, cost and confidence."""

    at: datetime  # the cycle time, UTC-aware; decisions of one agent ascending
    parse_failed: bool  # the model's answer could not be read as a decision
    hold_code: str | None  # a fallback HOLD's reason code (timeout, rate_limited, circuit_open, ...); None otherwise
    orders: int  # orders the decision asked for, executed or rejected (so >= len(rejection_reasons))
    rejection_reasons: tuple[str, ...]  # one reason code per rejected order
    latency_ms: float | None  # model call latency, None when not measured (baselines, fallbacks)
    cost_usd: Decimal | None  # inference cost recorded with the decision, None when unknown (counted as 0)
    confidence: float | None  # the stated confidence in [0, 1], None when the model stated none
    traded: bool  # at least one order of the decision was executed


@dataclass(frozen=True, slots=True)
class AgentInputs:
    """Everything the statistics read about one agent."""

    agent_id: int
    name: str
    marks: Sequence[EquityMark]
    fills: Sequence[Fill]
    decisions: Sequence[DecisionFacts]


# --------------------------------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class TradeStats:
    """Closed round trips, matched first-in first-out per symbol; P&L in USD net of both trades' fees."""

    round_trips: int  # closed lots (a sale that closes parts of two lots is two round trips)
    win_rate: float | None  # share of round trips with net P&L > 0; None without round trips
    profit_factor: float | None  # sum of winning P&L / |sum of losing P&L|; None without a losing round trip
    average_win: Decimal | None  # mean net P&L of winning round trips (> 0); None without a win
    average_loss: Decimal | None  # mean net P&L of losing round trips (< 0); None without a loss
    biggest_win: Decimal | None  # largest net P&L (> 0); None without a win
    biggest_loss: Decimal | None  # most negative net P&L (< 0); None without a loss
    average_holding: timedelta | None  # mean time from the lot's buy to its closing sale; None without round trips


@dataclass(frozen=True, slots=True)
class CostStats:
    """What it cost to think, beside the return it earned."""

    inference_cost_usd: Decimal  # sum of the decisions' recorded inference cost (unknown counted as 0)
    cost_per_decision: Decimal | None  # inference_cost_usd / decisions; None without decisions
    gross_total_return: float | None  # last equity / first equity - 1; None with fewer than 2 marks
    net_total_return: float | None  # (last equity - inference cost) / first equity - 1; None as above
    usd_per_return_point: Decimal | None  # inference cost / (100 x gross return); None unless gross return > 0


@dataclass(frozen=True, slots=True)
class DisciplineStats:
    """How often the agent failed to answer, fell back to HOLD, or asked for orders the rules refused."""

    decisions: int
    parse_failure_share: float | None  # share of decisions whose answer failed to parse; None without decisions
    hold_shares: Mapping[str, float]  # hold code -> share of all decisions that were that fallback HOLD
    rejected_order_shares: Mapping[str, float]  # rejection reason -> share of all orders asked for
    latency_mean_ms: float | None  # mean over decisions with a measured latency; None without any
    latency_p95_ms: float | None  # 95th percentile (linear interpolation) of the same latencies


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One confidence bin [low, high) of the reliability table (the last bin includes 1.0)."""

    low: float
    high: float
    count: int  # scored decisions whose confidence fell in the bin (> 0: empty bins are left out)
    mean_confidence: float
    hit_rate: float  # share of those decisions whose outcome was 1


@dataclass(frozen=True, slots=True)
class CalibrationStats:
    """Calibration of the stated confidence against the outcome `horizon_cycles` marks later."""

    horizon_cycles: int
    scored: int  # decisions that traded, stated a confidence and have a mark horizon_cycles later
    brier: float | None  # mean (confidence - outcome)^2 over the scored decisions; None when none is scored
    bins: tuple[ReliabilityBin, ...]  # non-empty bins of RELIABILITY_BINS equal-width bins on [0, 1]


@dataclass(frozen=True, slots=True)
class ControlComparison:
    """The agent's excess total return over one control on their common cycles, with a bootstrap interval."""

    control_agent_id: int
    control_name: str
    excess_return: float  # agent's compounded return - control's, over the paired cycles
    low: float  # lower end of the `confidence` percentile interval of the stationary-bootstrap excess
    high: float  # upper end of that interval
    probability_beats: float  # share of bootstrap replications with excess > 0 (ties count half)
    significant: bool  # the interval excludes 0
    paired_returns: int  # the number of paired per-cycle returns the comparison rests on
    block_length: int  # mean block length of the stationary bootstrap, in cycles


@dataclass(frozen=True, slots=True)
class AgentStatistics:
    """Every figure of one agent; see docs/statistics.md for each definition."""

    agent_id: int
    observations: int  # equity marks read (returns = observations - 1)
    total_return: float | None  # last / first equity - 1; None with fewer than 2 marks
    annualised_return: float | None  # (1 + total_return) ^ (periods_per_year / returns) - 1
    annualised_volatility: float | None  # sample std of per-cycle returns x sqrt(periods_per_year)
    sharpe: float | None  # mean / std of per-cycle returns x sqrt(periods_per_year), risk-free 0
    sortino: float | None  # mean / downside deviation x sqrt(periods_per_year), target 0
    calmar: float | None  # annualised_return / max_drawdown; None when there was no drawdown
    max_drawdown: float  # largest fall from a running peak, as a fraction of the peak (0 if none)
    max_drawdown_duration: timedelta | None  # longest time from a peak to regaining it (or to the last mark)
    sharpe_standard_error: float | None  # Lo (2002) standard error of the annualised Sharpe (HAC, q lags)
    deflated_sharpe_probability: float | None  # Bailey & Lopez de Prado (2014) DSR: P(true Sharpe > 0 | trials)
    trades: TradeStats
    turnover: float | None  # traded notional per year / mean equity
    exposure: float | None  # share of marks with something invested (equity != cash); None without marks
    fees_share_of_start: float  # trading fees paid / starting cash
    cost: CostStats
    discipline: DisciplineStats
    calibration: CalibrationStats
    versus_controls: tuple[ControlComparison, ...]  # one per control other than the agent itself
    name: str = ""
    returns: int = 0  # per-cycle returns the ratios rest on
