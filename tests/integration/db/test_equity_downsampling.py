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


@pytest.mark.parametrize(("start_hour", "end_hour", "max_points"), [(None, None, 500), (37, 1_500, 100), (0, 10, 5)])
def test_the_thinned_curve_is_every_kth_snapshot_counted_back_from_the_newest(
    queries: SqlAlchemyRaceQueries, agent_id: int, start_hour: int | None, end_hour: int | None, max_points: int
) -> None:
    start = T0 + start_hour * HOUR if start_hour is not None else None
    end = T0 + end_hour * HOUR if end_hour is not None else None
    in_range = [h for h in range(HOURS) if (start_hour or 0) <= h <= (end_hour if end_hour is not None else HOURS)]
    stride = -(-(len(in_range) - 1) // (max_points - 2))
    expected = [in_range[0]] + [h for h in in_range[1:] if (in_range[-1] - h) % stride == 0]

    points = queries.equity_series(agent_id, start=start, end=end, max_points=max_points)

    assert [(p.at - T0) // HOUR for p in points] == expected
    assert [p.equity for p in points] == [Decimal(100_000) + Decimal(h) / 8 for h in expected]


def test_snapshots_taken_at_uneven_times_are_thinned_by_their_number(
    uow_factory: SqlAlchemyUnitOfWorkFactory, queries: SqlAlchemyRaceQueries
) -> None:
    """Missed hours (an outage, a paused race) leave gaps in time, never in the numbering: the curve keeps
    every k-th snapshot that exists, and the range ends are found by time."""
    hours = [h for h in range(600) if h % 7 not in (3, 4)]  # two hours in every seven missing
    with uow_factory() as uow:
        agent_id = uow.agents.add(agent("uneven")).id
        snapshot = EquitySnapshot.first(agent_id, at=T0, equity=Decimal(1), cash=Decimal(0))
        uow.equity.add(snapshot)
        for hour in hours[1:]:
            uow.equity.add(snapshot := snapshot.next(at=T0 + hour * HOUR, equity=Decimal(hour), cash=Decimal(0)))
        uow.commit()

    start, end = T0 + 3 * HOUR, T0 + 500 * HOUR  # 3 is a missing hour: the range starts at 5
    points = queries.equity_series(agent_id, start=start, end=end, max_points=50)

    in_range = [h for h in hours if 3 <= h <= 500]
    stride = -(-(len(in_range) - 1) // 48)
    expected = [in_range[0]] + [h for i, h in enumerate(in_range) if i and (len(in_range) - 1 - i) % stride == 0]
    assert [(p.at - T0) // HOUR for p in points] == expected
    assert (expected[0], expected[-1]) == (5, 499)


def test_the_smallest_curves_keep_the_newest_point_and_then_the_first(
    queries: SqlAlchemyRaceQueries, agent_id: int
) -> None:
    newest, first = T0 + (HOURS - 1) * HOUR, T0
    assert [p.at for p in queries.equity_series(agent_id, start=None, end=None, max_points=1)] == [newest]
    assert [p.at for p in queries.equity_series(agent_id, start=None, end=None, max_points=2)] == [first, newest]
    assert queries.equity_series(agent_id, start=None, end=None, max_points=0) == []
    short = queries.equity_series(agent_id, start=None, end=T0 + 4 * HOUR, max_points=500)
    assert [p.at for p in short] == [T0 + h * HOUR for h in range(5)]  # fewer rows than points: all of them
