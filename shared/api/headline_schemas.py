"""The statistics the leaderboard carries: the excess over a control and which computed set the figures are.

Kept apart from `schemas.py` (which uses them) so that module stays readable; `/stats` reuses them too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.statistics import ControlComparison


class _HeadlinePublic(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)  # as schemas._Public


DEFINITIONS = "docs/statistics.md"  # every statistic's formula, sampling and annualisation


class ExcessReturnPublic(_HeadlinePublic):
    """An agent's excess total return over a control on their common cycles, with its bootstrap interval."""

    control_agent_id: int = Field(description="The control agent compared with.")
    control_name: str = Field(description="The control agent's name.")
    value: float = Field(
        description="Agent's compounded return minus the control's over the paired cycles, as a fraction "
        "(0.05 = 5 percentage points). Not annualised."
    )
    low: float = Field(description="Lower end of the 95% stationary-bootstrap percentile interval (fraction).")
    high: float = Field(description="Upper end of the 95% stationary-bootstrap percentile interval (fraction).")
    probability_beats: float = Field(description="Share of bootstrap replications where the agent beat it (0..1).")
    significant: bool = Field(description="True when the 95% interval excludes 0: the lead (or lag) is not luck.")

    @classmethod
    def from_comparison(cls, comparison: ControlComparison) -> ExcessReturnPublic:
        return cls(
            control_agent_id=comparison.control_agent_id,
            control_name=comparison.control_name,
            value=comparison.excess_return,
            low=comparison.low,
            high=comparison.high,
            probability_beats=comparison.probability_beats,
            significant=comparison.significant,
        )


class StatisticsStatusPublic(_HeadlinePublic):
    """Which stored set of statistics a response carries; the figures are computed once per cycle."""

    computed_for: datetime | None = Field(description="The newest equity mark the figures cover (UTC).")
    computed_at: datetime | None = Field(description="Wall-clock time they were computed (UTC).")
    note: str | None = Field(description="Why figures are missing (null when a computed set is served).")
    definitions: str = Field(DEFINITIONS, description="Where each figure is defined.")
