"""Finished cycles, one row each, with totals the database counts from the cycle's decisions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Insert, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shared.adapters.db.tables import CYCLES, DECISIONS
from shared.adapters.db.types import require_aware
from shared.adapters.db.write_statements import ON_CONFLICT_DIALECTS, insert_into, update_or_insert
from shared.services.ports import CycleRecord

_CYCLE_VALUES = ("snapshot_sha256", "agents", "decisions", "trades", "started_at", "finished_at")
_CYCLES_LATEST = select(func.max(CYCLES.c.cycle_time))


class SqlAlchemyCycleRepository:
    """Finished cycles; recording a cycle again replaces its counters."""

    def __init__(self, connection: Connection, *, on_conflict: bool | None = None) -> None:
        self._connection = connection
        self._dialect_name = connection.dialect.name
        self._on_conflict = self._dialect_name in ON_CONFLICT_DIALECTS if on_conflict is None else on_conflict

    def add(self, record: CycleRecord) -> None:
        values = _cycle_values(record)
        key = {"cycle_time": values.pop("cycle_time")}
        update_or_insert(self._connection, CYCLES, key, values)

    def record_counted(
        self, *, cycle_time: datetime, snapshot_sha256: str, agents: int, started_at: datetime, finished_at: datetime
    ) -> None:
        parameters = {
            "p_cycle_time": require_aware(cycle_time),
            "p_snapshot_sha256": snapshot_sha256,
            "p_agents": agents,
            "p_started_at": require_aware(started_at),
            "p_finished_at": require_aware(finished_at),
        }
        if self._on_conflict:
            self._connection.execute(_record_counted_upsert(self._dialect_name), parameters)
            return
        # Elsewhere: UPDATE with the counts as scalar subqueries, INSERT ... SELECT when no row matched.
        updated = self._connection.execute(_RECORD_COUNTED_UPDATE, parameters)
        if cast(CursorResult[Any], updated).rowcount == 0:
            self._connection.execute(_RECORD_COUNTED_INSERT, parameters)

    def add_many(self, records: Sequence[CycleRecord]) -> None:
        if records:
            self._connection.execute(insert_into(CYCLES), [_cycle_values(record) for record in records])

    def latest_time(self) -> datetime | None:
        latest: datetime | None = self._connection.execute(_CYCLES_LATEST).scalar_one_or_none()
        return latest


def _cycle_values(record: CycleRecord) -> dict[str, Any]:
    return {
        "cycle_time": require_aware(record.cycle_time),
        "snapshot_sha256": record.snapshot_sha256,
        "agents": record.agents,
        "decisions": record.decisions,
        "trades": record.trades,
        "started_at": require_aware(record.started_at),
        "finished_at": require_aware(record.finished_at),
    }


# The cycle's row with its totals counted from its decisions, by the database, in the statement that writes it.
_CYCLE_COUNTED = select(
    bindparam("p_cycle_time", type_=CYCLES.c.cycle_time.type),
    bindparam("p_snapshot_sha256", type_=CYCLES.c.snapshot_sha256.type),
    bindparam("p_agents", type_=CYCLES.c.agents.type),
    func.count(),
    func.coalesce(func.sum(DECISIONS.c.trade_count), 0),
    bindparam("p_started_at", type_=CYCLES.c.started_at.type),
    bindparam("p_finished_at", type_=CYCLES.c.finished_at.type),
).where(DECISIONS.c.cycle_time == bindparam("p_cycle_time"))
_RECORD_COUNTED_INSERT = insert(CYCLES).from_select(["cycle_time", *_CYCLE_VALUES], _CYCLE_COUNTED)
_RECORD_COUNTED_UPDATE = (
    update(CYCLES)
    .where(CYCLES.c.cycle_time == bindparam("p_cycle_time"))
    .values(
        snapshot_sha256=bindparam("p_snapshot_sha256"),
        agents=bindparam("p_agents"),
        decisions=select(func.count()).where(DECISIONS.c.cycle_time == bindparam("p_cycle_time")).scalar_subquery(),
        trades=select(func.coalesce(func.sum(DECISIONS.c.trade_count), 0))
        .where(DECISIONS.c.cycle_time == bindparam("p_cycle_time"))
        .scalar_subquery(),
        started_at=bindparam("p_started_at"),
        finished_at=bindparam("p_finished_at"),
    )
)


@functools.cache
def _record_counted_upsert(dialect_name: str) -> Insert:
    base = sqlite.insert(CYCLES) if dialect_name == "sqlite" else postgresql.insert(CYCLES)
    statement = base.from_select(["cycle_time", *_CYCLE_VALUES], _CYCLE_COUNTED)
    return statement.on_conflict_do_update(
        index_elements=[CYCLES.c.cycle_time], set_={name: statement.excluded[name] for name in _CYCLE_VALUES}
    )
