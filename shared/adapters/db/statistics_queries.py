"""What the race statistics read from the database: every agent's marks, fills and decision facts.

A year of hourly cycles x 20 agents is 175,000 marks and as many decisions: each kind is one ordered scan of
its index (four statements in all, whatever the number of agents), and only the columns the statistics use
cross into Python; the large audit columns (prompt, raw response, reasoning) are never read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from shared.adapters.db.repositories import AGENTS, DECISIONS, EQUITY, TRADES, _agent
from shared.domain.hold_codes import INVALID_OUTPUT, hold_code
from shared.domain.model import Side
from shared.domain.statistics import AgentInputs, DecisionFacts, EquityMark, Fill
from shared.services.statistics_ports import RaceHistory

# (agent_id, at) is the primary key and the leading columns of the covering series index: an ordered scan.
_MARKS = select(EQUITY.c.agent_id, EQUITY.c.at, EQUITY.c.equity, EQUITY.c.cash).order_by(EQUITY.c.agent_id, EQUITY.c.at)
# A trade's cycle_time is its decision's cycle time (written from the same record): the fill's time, no join.
_FILLS = select(
    TRADES.c.agent_id,
    TRADES.c.cycle_time,
    TRADES.c.symbol,
    TRADES.c.side,
    TRADES.c.quantity,
    TRADES.c.price,
    TRADES.c.fee,
).order_by(TRADES.c.agent_id, TRADES.c.cycle_time, TRADES.c.id)
_DECISIONS = select(
    DECISIONS.c.agent_id,
    DECISIONS.c.cycle_time,
    DECISIONS.c.hold_reason,
    DECISIONS.c.orders,
    DECISIONS.c.rejections,
    DECISIONS.c.trade_count,
    DECISIONS.c.latency_ms,
    DECISIONS.c.cost_usd,
    DECISIONS.c.confidence,
).order_by(DECISIONS.c.agent_id, DECISIONS.c.cycle_time)
_LATEST_MARK = select(func.max(EQUITY.c.at))


def latest_mark_time(connection: Connection) -> datetime | None:
    value = connection.execute(_LATEST_MARK).scalar_one_or_none()
    # max() keeps the column's UTC type; a naive value (a driver's bare answer) is UTC as stored.
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


def load_race_history(connection: Connection) -> RaceHistory:
    """Every agent (by id) with its inputs; an agent with no marks yet has empty sequences."""
    agents = tuple(_agent(row) for row in connection.execute(select(AGENTS).order_by(AGENTS.c.id)))
    marks: defaultdict[int, list[EquityMark]] = defaultdict(list)
    latest: datetime | None = None
    for agent_id, at, equity, cash in connection.execute(_MARKS):
        marks[agent_id].append(EquityMark(at, equity, cash))
    for series in marks.values():
        if latest is None or series[-1].at > latest:
            latest = series[-1].at
    fills: defaultdict[int, list[Fill]] = defaultdict(list)
    for agent_id, at, symbol, side, quantity, price, fee in connection.execute(_FILLS):
        fills[agent_id].append(Fill(at, symbol, Side(side), quantity, price, fee))
    decisions: defaultdict[int, list[DecisionFacts]] = defaultdict(list)
    for row in connection.execute(_DECISIONS):
        decisions[row.agent_id].append(_facts(row))
    inputs = tuple(
        AgentInputs(
            agent_id=agent.id,
            name=agent.name,
            marks=tuple(marks.get(agent.id, ())),
            fills=tuple(fills.get(agent.id, ())),
            decisions=tuple(decisions.get(agent.id, ())),
        )
        for agent in agents
    )
    return RaceHistory(agents=agents, inputs=inputs, latest_mark=latest)


def _facts(row: Any) -> DecisionFacts:
    code = hold_code(row.hold_reason) if row.hold_reason is not None else None
    return DecisionFacts(
        at=row.cycle_time,
        parse_failed=code == INVALID_OUTPUT,
        hold_code=code,
        orders=len(row.orders or ()),
        rejection_reasons=tuple(_reasons(row.rejections or ())),
        latency_ms=row.latency_ms,
        cost_usd=row.cost_usd,
        confidence=row.confidence,
        traded=row.trade_count > 0,
    )


def _reasons(rejections: Iterable[Any]) -> Iterable[str]:
    for rejection in rejections:
        reason = rejection.get("reason") if isinstance(rejection, dict) else None
        yield str(reason) if reason else "unknown"
