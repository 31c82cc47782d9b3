"""What a response says about the stored statistics it carries (or why there are none)."""

from __future__ import annotations

from shared.api.headline_schemas import StatisticsStatusPublic
from shared.services.statistics_ports import StatisticsRepository, StoredStatistics

NOT_STORED = "This deployment does not compute statistics."
NOT_YET = "No statistics yet: they are computed once the first cycle's equity marks land."


def statistics_status(
    repository: StatisticsRepository | None, stored: StoredStatistics | None, *, missing: str | None = None
) -> StatisticsStatusPublic:
    if stored is None:
        return StatisticsStatusPublic(
            computed_for=None, computed_at=None, note=NOT_STORED if repository is None else NOT_YET
        )
    return StatisticsStatusPublic(computed_for=stored.computed_for, computed_at=stored.computed_at, note=missing)
