"""`StatisticsRepository` on SQLAlchemy: the computed statistics stored one row per agent, read by the API.

The API reads the stored set through a small in-process cache keyed by its stamp (count and times of the
rows): each request costs one aggregate over about twenty rows, and the JSON is decoded again only when a
new set has landed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Engine, Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.engine import set_sqlite_begin_mode
from shared.adapters.db.models import AgentStatisticsRow
from shared.adapters.db.statistics_codec import decode, encode
from shared.adapters.db.statistics_queries import latest_mark_time, load_race_history
from shared.adapters.db.types import require_aware
from shared.domain.statistics import AgentStatistics
from shared.services.statistics_ports import RaceHistory, StatisticsStamp, StoredStatistics


def _table() -> Table:
    table = AgentStatisticsRow.__table__
    assert isinstance(table, Table)
    return table


STATISTICS = _table()
_STAMP = select(func.count(), func.max(STATISTICS.c.computed_for), func.max(STATISTICS.c.computed_at))
_ROWS = select(STATISTICS).order_by(STATISTICS.c.agent_id)


class SqlAlchemyStatisticsRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: StoredStatistics | None = None
        self._lock = threading.Lock()  # FastAPI runs sync routes on a thread pool

    def latest_mark_time(self) -> datetime | None:
        with self.engine.connect() as connection:
            return latest_mark_time(connection)

    def race_history(self) -> RaceHistory:
        # One connection, one read transaction: marks, fills and decisions of the same committed state.
        with self.engine.connect() as connection, connection.begin():
            return load_race_history(connection)

    def save(self, *, computed_for: datetime, computed_at: datetime, statistics: Mapping[int, AgentStatistics]) -> bool:
        rows = [
            {
                "agent_id": agent_id,
                "computed_for": require_aware(computed_for),
                "computed_at": require_aware(computed_at),
                "observations": stats.observations,
                "payload": encode(stats),
            }
            for agent_id, stats in sorted(statistics.items())
        ]
        try:
            with self.engine.connect() as connection:
                # It reads, then writes: on SQLite it takes the write lock up front, or a cycle committing in
                # between (the local race computes statistics beside its loop) fails it at once with "database
                # is locked", whatever the busy timeout.
                set_sqlite_begin_mode(connection, "IMMEDIATE")
                with connection.begin():
                    stored_for = connection.execute(select(func.max(STATISTICS.c.computed_for))).scalar_one_or_none()
                    if stored_for is not None and _utc(stored_for) > require_aware(computed_for):
                        return False
                    connection.execute(delete(STATISTICS))
                    if rows:
                        connection.execute(insert(STATISTICS), rows)
        except IntegrityError:
            # Another run replaced the set between our delete and insert (two equity jobs at once): ours was
            # rolled back whole, and theirs is at least as new. Anything else (an unknown agent) is a bug.
            stamp = self.stamp()
            if stamp is not None and stamp.computed_for >= require_aware(computed_for):
                return False
            raise
        return True

    def stamp(self) -> StatisticsStamp | None:
        with self.engine.connect() as connection:
            return _stamp(connection.execute(_STAMP).one())

    def latest(self) -> StoredStatistics | None:
        with self.engine.connect() as connection:
            stamp = _stamp(connection.execute(_STAMP).one())
            if stamp is None:
                return None
            with self._lock:
                cached = self._cached
            if cached is not None and cached.stamp == stamp:
                return cached
            rows = connection.execute(_ROWS).all()
        if not rows:
            return None
        stored = StoredStatistics(
            computed_for=max(_utc(r.computed_for) for r in rows),
            computed_at=max(_utc(r.computed_at) for r in rows),
            by_agent={r.agent_id: decode(AgentStatistics, r.payload) for r in rows},
        )
        with self._lock:
            self._cached = stored
        return stored


def _stamp(row: tuple[int, datetime | None, datetime | None]) -> StatisticsStamp | None:
    count, computed_for, computed_at = row
    if not count or computed_for is None or computed_at is None:
        return None
    return StatisticsStamp(_utc(computed_for), _utc(computed_at), int(count))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
