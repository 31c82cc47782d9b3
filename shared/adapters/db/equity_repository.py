"""Equity snapshots (marks to market), unique on (agent, at), and what marking to market reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.tables import AGENTS, EQUITY, PORTFOLIOS, POSITIONS, is_latest_equity_of
from shared.adapters.db.types import require_aware
from shared.adapters.db.write_statements import ON_CONFLICT_DIALECTS, insert_into, insert_unless_exists
from shared.domain.model import EquitySnapshot, Portfolio, Position

_EQUITY_LATEST = select(EQUITY).where(EQUITY.c.agent_id == bindparam("agent_id")).order_by(EQUITY.c.at.desc()).limit(1)
# Driven by the agents table: per agent one seek for MAX(at) on the (agent_id, at) key and one for the row,
# where a correlation on the snapshots themselves would evaluate the subquery for every stored snapshot.
_EQUITY_LATEST_MANY = (
    select(EQUITY)
    .join_from(
        AGENTS,
        EQUITY,
        is_latest_equity_of(AGENTS.c.id, AGENTS),
    )
    .where(AGENTS.c.id.in_(bindparam("agent_ids", expanding=True)))
)
_EQUITY_EXISTS = select(exists().where(EQUITY.c.agent_id == bindparam("agent_id"), EQUITY.c.at == bindparam("at")))
# Everything marking to market reads, in one round trip: each portfolio with its positions (NULLs for none)
# and its agent's latest snapshot (NULLs before the first), found by one seek per agent as above.
_MARKING_INPUTS = (
    select(
        PORTFOLIOS.c.agent_id,
        PORTFOLIOS.c.cash,
        POSITIONS.c.symbol,
        POSITIONS.c.quantity,
        POSITIONS.c.avg_cost,
        EQUITY.c.at,
        EQUITY.c.equity,
        EQUITY.c.cash.label("equity_cash"),
        EQUITY.c.peak_equity,
        EQUITY.c.max_drawdown,
        EQUITY.c.ordinal,
    )
    .select_from(PORTFOLIOS)
    .outerjoin(POSITIONS, POSITIONS.c.agent_id == PORTFOLIOS.c.agent_id)
    .outerjoin(
        EQUITY,
        is_latest_equity_of(PORTFOLIOS.c.agent_id, PORTFOLIOS),
    )
    .order_by(PORTFOLIOS.c.agent_id, POSITIONS.c.symbol)
)


class SqlAlchemyEquityRepository:
    """Marks to market, unique on (agent, at)."""

    def __init__(self, connection: Connection, *, on_conflict: bool | None = None) -> None:
        self._connection = connection
        self._dialect_name = connection.dialect.name
        self._on_conflict = self._dialect_name in ON_CONFLICT_DIALECTS if on_conflict is None else on_conflict

    def latest(self, agent_id: int) -> EquitySnapshot | None:
        row = self._connection.execute(_EQUITY_LATEST, {"agent_id": agent_id}).first()
        return _equity(row) if row else None

    def latest_many(self, agent_ids: Iterable[int]) -> dict[int, EquitySnapshot]:
        ids = sorted(set(agent_ids))
        if not ids:
            return {}
        return {row.agent_id: _equity(row) for row in self._connection.execute(_EQUITY_LATEST_MANY, {"agent_ids": ids})}

    def add(self, snapshot: EquitySnapshot) -> bool:
        values = _equity_values(snapshot)
        if self._on_conflict:
            statement = insert_unless_exists(EQUITY, ("agent_id", "at"), self._dialect_name)
            try:
                with self._connection.begin_nested():
                    return self._connection.execute(statement, values).first() is not None
            except IntegrityError:  # a concurrent run's next mark of this agent (the ordinal index)
                return False
        return self._add_guarded(snapshot)

    def _add_guarded(self, snapshot: EquitySnapshot) -> bool:
        values = _equity_values(snapshot)
        if self._connection.execute(_EQUITY_EXISTS, {"agent_id": snapshot.agent_id, "at": values["at"]}).scalar():
            return False
        try:
            with self._connection.begin_nested():  # a concurrent writer got there first: not an error
                self._connection.execute(insert_into(EQUITY), values)
        except IntegrityError:
            return False
        return True

    def add_many(self, snapshots: Sequence[EquitySnapshot]) -> int:
        if not self._on_conflict:
            return sum(self.add(snapshot) for snapshot in snapshots)
        rows = [_equity_values(snapshot) for snapshot in snapshots]
        if not rows:
            return 0
        # executemany with RETURNING: SQLAlchemy sends it as one multi-row INSERT ... ON CONFLICT DO NOTHING
        # ("insertmanyvalues"), from a statement compiled once; the rows that come back were written.
        statement = insert_unless_exists(EQUITY, ("agent_id", "at"), self._dialect_name)
        try:
            with self._connection.begin_nested():
                return len(self._connection.execute(statement, rows).all())
        except IntegrityError:
            # A concurrent run wrote an agent's next mark first: ON CONFLICT covers (agent, at) only, not the
            # (agent, ordinal) index. Row by row, each such mark is skipped: the other run's mark stands.
            return sum(self._add_guarded(snapshot) for snapshot in snapshots)

    def marking_inputs(self) -> list[tuple[Portfolio, EquitySnapshot | None]]:
        found: dict[int, tuple[Portfolio, EquitySnapshot | None]] = {}
        for agent_id, cash, symbol, quantity, avg_cost, *latest_columns in self._connection.execute(_MARKING_INPUTS):
            entry = found.get(agent_id)
            if entry is None:
                at, equity, equity_cash, peak_equity, max_drawdown, ordinal = latest_columns
                latest = (
                    EquitySnapshot(agent_id, at, equity, equity_cash, peak_equity, max_drawdown, ordinal)
                    if at is not None
                    else None
                )
                entry = found[agent_id] = (Portfolio(agent_id, cash), latest)
            if symbol is not None:
                entry[0].positions[symbol] = Position(quantity, avg_cost)
        return list(found.values())


def _equity_values(snapshot: EquitySnapshot) -> dict[str, Any]:
    return {
        "agent_id": snapshot.agent_id,
        "at": require_aware(snapshot.at),
        "equity": snapshot.equity,
        "cash": snapshot.cash,
        "peak_equity": snapshot.peak_equity,
        "max_drawdown": snapshot.max_drawdown,
        "ordinal": snapshot.ordinal,
    }


def _equity(row: Any) -> EquitySnapshot:
    return EquitySnapshot(row.agent_id, row.at, row.equity, row.cash, row.peak_equity, row.max_drawdown, row.ordinal)
