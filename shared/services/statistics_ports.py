"""Ports of the race statistics: where their inputs come from and where the computed figures are kept.

The figures are computed once per cycle (`shared.services.race_statistics`) and stored; the API only ever
reads the stored set (`StatisticsRepository.latest`), never a year of marks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.model import Agent
from shared.domain.statistics import AgentInputs, AgentStatistics


@dataclass(frozen=True, slots=True)
class RaceHistory:
    """Every agent with everything the statistics read about it (`inputs[i]` belongs to `agents[i]`)."""

    agents: tuple[Agent, ...]
    inputs: tuple[AgentInputs, ...]
    latest_mark: datetime | None  # the newest equity mark of any agent


@dataclass(frozen=True, slots=True)
class StatisticsStamp:
    """Which stored set is current: cheap to read, and it changes whenever a new set lands."""

    computed_for: datetime  # the newest equity mark the figures cover
    computed_at: datetime  # wall-clock time they were computed
    agents: int


@dataclass(frozen=True, slots=True)
class StoredStatistics:
    computed_for: datetime
    computed_at: datetime
    by_agent: Mapping[int, AgentStatistics]

    @property
    def stamp(self) -> StatisticsStamp:
        return StatisticsStamp(self.computed_for, self.computed_at, len(self.by_agent))


class StatisticsRepository(Protocol):
    def latest_mark_time(self) -> datetime | None:
        """The newest equity mark of any agent (None before the first): whether a refresh has anything new."""
        ...

    def race_history(self) -> RaceHistory:
        """Every agent's marks, fills and decision facts, in a fixed number of round trips."""
        ...

    def save(self, *, computed_for: datetime, computed_at: datetime, statistics: Mapping[int, AgentStatistics]) -> bool:
        """Replace the stored set with `statistics` in one transaction. False, with nothing written, when a set
        computed for a later mark is already stored (a slower, older run must not overwrite a newer one)."""
        ...

    def stamp(self) -> StatisticsStamp | None:
        """The stored set's stamp (one small query); None when nothing has been computed yet."""
        ...

    def latest(self) -> StoredStatistics | None:
        """The stored set (cached in process until the stamp changes); None when nothing has been computed."""
        ...
