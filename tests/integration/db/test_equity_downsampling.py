"""The equity curve of a long race is thinned in the database: bounded, evenly spaced, ends kept, exact values."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.db.queries import SqlAlchemyRaceQueries
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import EquitySnapshot
from tests.integration.db.builders import HOUR, T0, agent

HOURS = 2_000


@pytest.fixture
def agent_id(uow_factory: SqlAlchemyUnitOfWorkFactory) -> int:
    with uow_factory() as uow:
        new_id = uow.agents.add(agent()).id
        snapshot = EquitySnapshot.first(new_id, at=T0, equity=Decimal(100_000), cash=Decimal(0))
        uow.equity.add(snapshot)
        for hour in range(1, HOURS):
            equity = Decimal(100_000) + Decimal(hour) / 8
            uow.equity.add(snapshot := snapshot.next(at=T0 + hour * HOUR, equity=equity, cash=Decimal(0)))
        uow.commit()
    return new_id


@pytest.mark.parametrize("max_points", [3, 10, 500, 1999])
def test_long_curves_are_thinned_evenly_within_the_bound(
    queries: SqlAlchemyRaceQueries, agent_id: int, max_points: int
) -> None:
    points = queries.equity_series(agent_id, start=None, end=None, max_points=max_points)
    assert max_points * 0.5 <= len(points) <= max_points
    assert points[0].at == T0
    assert points[-1].at == T0 + (HOURS - 1) * HOUR
    assert points[-1].equity == Decimal(100_000) + Decimal(HOURS - 1) / 8  # exact, not re-rounded floats
    gaps = {b.at - a.at for a, b in itertools.pairwise(points[1:])}
    assert len(gaps) == (1 if len(points) > 2 else 0), "kept points after the first are evenly spaced"


def test_a_range_is_thinned_within_itself(queries: SqlAlchemyRaceQueries, agent_id: int) -> None:
    start, end = T0 + 100 * HOUR, T0 + 1099 * HOUR
    points = queries.equity_series(agent_id, start=start, end=end, max_points=100)
    assert 50 <= len(points) <= 100
    assert (points[0].at, points[-1].at) == (start, end)
    assert all(start <= p.at <= end for p in points)
    assert queries.equity_series(agent_id, start=end + timedelta(days=365), end=None, max_points=100) == []


def test_a_polled_curve_is_reused_until_a_new_snapshot_arrives(
    uow_factory: SqlAlchemyUnitOfWorkFactory, queries: SqlAlchemyRaceQueries, agent_id: int
) -> None:
    first = queries.equity_series(agent_id, start=None, end=None, max_points=100)
    assert queries.equity_series(agent_id, start=None, end=None, max_points=100) == first

    with uow_factory() as uow:
        latest = uow.equity.latest(agent_id)
        assert latest is not None
        newest = latest.next(at=latest.at + HOUR, equity=Decimal(123_456), cash=Decimal(0))
        uow.equity.add(newest)
        uow.commit()

    again = queries.equity_series(agent_id, start=None, end=None, max_points=100)
    assert again[-1].at == newest.at
    assert again[-1].equity == Decimal(123_456), "the new snapshot is served, not the cached curve"
    assert queries.equity_series(agent_id, start=None, end=latest.at, max_points=100) != again
