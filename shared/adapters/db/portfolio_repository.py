"""Portfolios: cash and counters on one row per agent, positions on their own rows, an optimistic version."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Select, bindparam, delete, select, update

from shared.adapters.db.tables import PORTFOLIOS, POSITIONS
from shared.adapters.db.write_statements import insert_into
from shared.domain.model import Portfolio, Position
from shared.services.ports import VersionedPortfolio

# One round trip for any number of portfolios: positions joined on (NULL columns for a portfolio without any).
_PORTFOLIO_COLUMNS = (
    select(
        PORTFOLIOS.c.agent_id,
        PORTFOLIOS.c.cash,
        PORTFOLIOS.c.fees_paid,
        PORTFOLIOS.c.trade_count,
        PORTFOLIOS.c.version,
        POSITIONS.c.symbol,
        POSITIONS.c.quantity,
        POSITIONS.c.avg_cost,
    )
    .outerjoin(POSITIONS, POSITIONS.c.agent_id == PORTFOLIOS.c.agent_id)
    .order_by(PORTFOLIOS.c.agent_id, POSITIONS.c.symbol)
)
_PORTFOLIOS_WITH_POSITIONS = _PORTFOLIO_COLUMNS.where(PORTFOLIOS.c.agent_id.in_(bindparam("agent_ids", expanding=True)))
# The one-agent read of every decision's transaction: no expanding IN to render per call.
_PORTFOLIO_WITH_POSITIONS = _PORTFOLIO_COLUMNS.where(PORTFOLIOS.c.agent_id == bindparam("agent_id"))
_DELETE_POSITIONS = delete(POSITIONS).where(POSITIONS.c.agent_id == bindparam("agent_id"))
_PORTFOLIO_VALUES = {
    "cash": bindparam("new_cash"),
    "fees_paid": bindparam("new_fees_paid"),
    "trade_count": bindparam("new_trade_count"),
    "updated_at": bindparam("new_updated_at"),
    "version": PORTFOLIOS.c.version + 1,
}
_UPDATE_PORTFOLIO = (
    update(PORTFOLIOS).where(PORTFOLIOS.c.agent_id == bindparam("key_agent_id")).values(_PORTFOLIO_VALUES)
)
# The optimistic write: matches no row when another writer has bumped the version since it was read.
_REPLACE_PORTFOLIO = _UPDATE_PORTFOLIO.where(PORTFOLIOS.c.version == bindparam("key_version"))
_POSITION_KEY = (POSITIONS.c.agent_id == bindparam("key_agent_id"), POSITIONS.c.symbol == bindparam("key_symbol"))
_DELETE_POSITION = delete(POSITIONS).where(*_POSITION_KEY)
_UPDATE_POSITION = (
    update(POSITIONS)
    .where(*_POSITION_KEY)
    .values(quantity=bindparam("new_quantity"), avg_cost=bindparam("new_avg_cost"))
)


class SqlAlchemyPortfolioRepository:
    """Cash and counters on one row, positions on their own rows; `save` replaces the whole set, `replace`
    writes only the difference from the version it replaces. Every write bumps the row's version.

    Portfolios read in this unit of work are remembered, so saving one unchanged (an agent that held) writes
    nothing: the stored rows are already exactly that portfolio."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._stored: dict[int, Portfolio] = {}

    def get(self, agent_id: int) -> Portfolio | None:
        found = self._read(_PORTFOLIO_WITH_POSITIONS, {"agent_id": agent_id}).get(agent_id)
        return found.portfolio if found else None

    def get_many(self, agent_ids: Iterable[int]) -> dict[int, Portfolio]:
        return {agent_id: found.portfolio for agent_id, found in self.get_many_versioned(agent_ids).items()}

    def get_many_versioned(self, agent_ids: Iterable[int]) -> dict[int, VersionedPortfolio]:
        ids = sorted(set(agent_ids))
        return self._read(_PORTFOLIOS_WITH_POSITIONS, {"agent_ids": ids}) if ids else {}

    def _read(self, statement: Select[Any], parameters: dict[str, Any]) -> dict[int, VersionedPortfolio]:
        found: dict[int, VersionedPortfolio] = {}
        for agent_id, cash, fees_paid, trade_count, version, symbol, quantity, avg_cost in self._connection.execute(
            statement, parameters
        ):
            stored = found.get(agent_id)
            if stored is None:
                stored = found[agent_id] = VersionedPortfolio(
                    Portfolio(agent_id, cash, {}, fees_paid, trade_count), version
                )
            if symbol is not None:
                stored.portfolio.positions[symbol] = Position(quantity, avg_cost)
        for agent_id, stored in found.items():
            self._stored[agent_id] = stored.portfolio.copy()
        return found

    def save(self, portfolio: Portfolio) -> None:
        if self._stored.get(portfolio.agent_id) == portfolio:
            return
        agent_id = portfolio.agent_id
        updated = self._connection.execute(_UPDATE_PORTFOLIO, _portfolio_parameters(portfolio))
        if cast(CursorResult[Any], updated).rowcount == 0:
            values = {
                "agent_id": agent_id,
                "cash": portfolio.cash,
                "fees_paid": portfolio.fees_paid,
                "trade_count": portfolio.trade_count,
                "updated_at": datetime.now(UTC),
                "version": 1,
            }
            self._connection.execute(insert_into(PORTFOLIOS), values)
        self._connection.execute(_DELETE_POSITIONS, {"agent_id": agent_id})
        rows = [
            {"agent_id": agent_id, "symbol": symbol, "quantity": p.quantity, "avg_cost": p.avg_cost}
            for symbol, p in sorted(portfolio.positions.items())
        ]
        if rows:
            self._connection.execute(insert_into(POSITIONS), rows)
        self._stored[agent_id] = portfolio.copy()

    def replace(self, stored: VersionedPortfolio, portfolio: Portfolio) -> bool:
        agent_id = portfolio.agent_id
        if stored.portfolio.agent_id != agent_id:
            raise ValueError(f"portfolio of agent {agent_id} cannot replace agent {stored.portfolio.agent_id}'s")
        parameters = _portfolio_parameters(portfolio) | {"key_version": stored.version}
        if cast(CursorResult[Any], self._connection.execute(_REPLACE_PORTFOLIO, parameters)).rowcount == 0:
            return False
        # The version matched, so the stored positions are exactly `stored`'s: write the difference only.
        before, after = stored.portfolio.positions, portfolio.positions
        removed = [{"key_agent_id": agent_id, "key_symbol": s} for s in before if s not in after]
        changed = [
            {"key_agent_id": agent_id, "key_symbol": s, "new_quantity": p.quantity, "new_avg_cost": p.avg_cost}
            for s, p in after.items()
            if s in before and before[s] != p
        ]
        added = [
            {"agent_id": agent_id, "symbol": s, "quantity": p.quantity, "avg_cost": p.avg_cost}
            for s, p in after.items()
            if s not in before
        ]
        if removed:
            self._connection.execute(_DELETE_POSITION, removed)
        if changed:
            self._connection.execute(_UPDATE_POSITION, changed)
        if added:
            self._connection.execute(insert_into(POSITIONS), added)
        self._stored[agent_id] = portfolio.copy()
        return True


def _portfolio_parameters(portfolio: Portfolio) -> dict[str, Any]:
    return {
        "key_agent_id": portfolio.agent_id,
        "new_cash": portfolio.cash,
        "new_fees_paid": portfolio.fees_paid,
        "new_trade_count": portfolio.trade_count,
        "new_updated_at": datetime.now(UTC),
    }
