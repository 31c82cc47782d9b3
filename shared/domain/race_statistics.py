"""The one entry point of the race statistics: every agent's figures, controls compared, from stored facts.

Pure and deterministic (a seeded bootstrap); called when a cycle lands, never on the request path.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from shared.domain.statistics import AgentInputs, AgentStatistics


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

    Raises ValueError for input that cannot be trusted (naive or unsorted times, negative money, unknown
    control ids, ...), with a message naming the agent and the item.
    """
    raise NotImplementedError
