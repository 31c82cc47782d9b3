"""The Core `Table`s the repositories and read queries run their statements on, and the one join they share
(an agent's latest equity snapshot, found by one seek per agent)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, select

from shared.adapters.db.models import (
    AgentRow,
    AssetRow,
    CycleRow,
    DecisionRow,
    EquitySnapshotRow,
    PortfolioRow,
    PositionRow,
    TradeRow,
)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


ASSETS = _table(AssetRow)
AGENTS = _table(AgentRow)
PORTFOLIOS = _table(PortfolioRow)
POSITIONS = _table(PositionRow)
DECISIONS = _table(DecisionRow)
TRADES = _table(TradeRow)
EQUITY = _table(EquitySnapshotRow)
CYCLES = _table(CycleRow)

_EQUITY_HISTORY = EQUITY.alias("history")


def is_latest_equity_of(agent_id: ColumnElement[int], outer: Table) -> ColumnElement[bool]:
    """Join condition: the EQUITY row is the latest snapshot of `agent_id` (a column of `outer`). A correlated
    MAX(at) costs one seek on the (agent_id, at) key per agent, where GROUP BY + join aggregates all history."""
    latest_at = (
        select(func.max(_EQUITY_HISTORY.c.at))
        .where(_EQUITY_HISTORY.c.agent_id == agent_id)
        .correlate(outer)
        .scalar_subquery()
    )
    return and_(EQUITY.c.agent_id == agent_id, EQUITY.c.at == latest_at)
