"""What the race statistics read from the database: every agent's marks, fills and decision facts.

A year of hourly cycles x 20 agents is 175,000 marks and as many decisions: each kind is one ordered scan of
its index (four statements in all, whatever the number of agents), and only the columns the statistics use
cross into Python; the large audit columns (prompt, raw response, reasoning) are never read.

Rows are read raw (`type_coerce`: no per-value type decorators) and converted here, with each distinct time
and amount converted once: the cycle times repeat across agents and tables, and the column decorators' own
per-value overhead was most of the read (measured: 11.7 s -> see bench/bench_leaderboard_stats.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, String, UnicodeText, cast, func, select, type_coerce

from shared.adapters.db.repositories import AGENTS, DECISIONS, EQUITY, TRADES, _agent
from shared.domain.hold_codes import INVALID_OUTPUT, hold_code
from shared.domain.model import Side
from shared.domain.money import SCALE
from shared.domain.statistics import AgentInputs, DecisionFacts, EquityMark, Fill
from shared.services.statistics_ports import RaceHistory


def _raw_time(column: Any) -> Any:
    # SQLite hands back its text, the other drivers a naive datetime: both converted by `_Times`.
    return type_coerce(column, String())


def _raw_amount(column: Any) -> Any:
    return type_coerce(column, BigInteger())  # the scaled integer behind a ScaledDecimal column


def _raw_json(column: Any) -> Any:
    # The JSON's text, on every dialect (psycopg would decode a json column itself): "[]" needs no parsing.
    return cast(column, UnicodeText())


# (agent_id, at) is the primary key and the leading columns of the covering series index: an ordered scan.
_MARKS = select(
    EQUITY.c.agent_id, _raw_time(EQUITY.c.at), _raw_amount(EQUITY.c.equity), _raw_amount(EQUITY.c.cash)
).order_by(EQUITY.c.agent_id, EQUITY.c.at)
# A trade's cycle_time is its decision's cycle time (written from the same record): the fill's time, no join.
_FILLS = select(
    TRADES.c.agent_id,
    _raw_time(TRADES.c.cycle_time),
    TRADES.c.symbol,
    TRADES.c.side,
    _raw_amount(TRADES.c.quantity),
    _raw_amount(TRADES.c.price),
    _raw_amount(TRADES.c.fee),
).order_by(TRADES.c.agent_id, TRADES.c.cycle_time, TRADES.c.id)
_DECISIONS = select(
    DECISIONS.c.agent_id,
    _raw_time(DECISIONS.c.cycle_time),
    DECISIONS.c.hold_reason,
    _raw_json(DECISIONS.c.orders),
    _raw_json(DECISIONS.c.rejections),
    DECISIONS.c.trade_count,
    DECISIONS.c.latency_ms,
    _raw_amount(DECISIONS.c.cost_usd),
    DECISIONS.c.confidence,
).order_by(DECISIONS.c.agent_id, DECISIONS.c.cycle_time)
_LATEST_MARK = select(func.max(EQUITY.c.at))


def latest_mark_time(connection: Connection) -> datetime | None:
    value = connection.execute(_LATEST_MARK).scalar_one_or_none()
    # max() keeps the column's UTC type; a naive value (a driver's bare answer) is UTC as stored.
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


class _Memo(dict[Any, Any]):
    """Converts each distinct raw value once (cycle times repeat across agents, unchanged cash repeats)."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, raw: Any) -> Any:
        value = self[raw] = self.convert(raw)
        return value


def _time(raw: Any) -> datetime:
    moment = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _amount(raw: Any) -> Decimal:
    return Decimal(int(raw)).scaleb(-SCALE)  # exactly ScaledDecimal's reading


def load_race_history(connection: Connection) -> RaceHistory:
    """Every agent (by id) with its inputs; an agent with no marks yet has empty sequences."""
    times, amounts = _Memo(_time), _Memo(_amount)
    agents = tuple(_agent(row) for row in connection.execute(select(AGENTS).order_by(AGENTS.c.id)))
    marks: defaultdict[int, list[EquityMark]] = defaultdict(list)
    for agent_id, at, equity, cash in connection.execute(_MARKS).all():  # one fetch, not one call a row
        marks[agent_id].append(EquityMark(times[at], amounts[equity], amounts[cash]))
    latest = max((series[-1].at for series in marks.values()), default=None)
    fills: defaultdict[int, list[Fill]] = defaultdict(list)
    for agent_id, at, symbol, side, quantity, price, fee in connection.execute(_FILLS).all():
        fills[agent_id].append(Fill(times[at], symbol, Side(side), amounts[quantity], amounts[price], amounts[fee]))
    decisions: defaultdict[int, list[DecisionFacts]] = defaultdict(list)
    for row in connection.execute(_DECISIONS).all():
        decisions[row[0]].append(_facts(row, times, amounts))
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


def _facts(row: Any, times: _Memo, amounts: _Memo) -> DecisionFacts:
    _, at, hold_reason, orders, rejections, trade_count, latency_ms, cost_usd, confidence = row
    code = hold_code(hold_reason) if hold_reason is not None else None
    asked, refused = _json_list(orders), _json_list(rejections)
    return DecisionFacts(
        at=times[at],
        parse_failed=code == INVALID_OUTPUT,
        hold_code=code,
        orders=_orders_asked(asked, refused),
        rejection_reasons=tuple(_reasons(refused)),
        latency_ms=latency_ms,
        cost_usd=None if cost_usd is None else amounts[cost_usd],
        confidence=confidence,
        traded=trade_count > 0,
    )


def _json_list(value: Any) -> list[Any]:
    if value is None or value == "[]":  # most decisions: no order, no rejection; no parsing needed
        return []
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, list) else []


def _order_key(item: Any) -> tuple[Any, ...]:
    get = item.get if isinstance(item, dict) else (lambda _: None)
    return (get("symbol"), get("side"), get("quantity"), get("notional_usd"))


def _orders_asked(orders: list[Any], rejections: list[Any]) -> int:
    """The orders the model asked for: the stored (parsed) orders plus the parser's rejections, which never
    became orders. A rules rejection repeats one of the stored orders; any other rejection is the parser's."""
    if not rejections:
        return len(orders)
    stored = Counter(_order_key(o) for o in orders)
    parser_rejections = 0
    for rejection in rejections:
        key = _order_key(rejection)
        if stored[key] > 0:
            stored[key] -= 1
        else:
            parser_rejections += 1
    return len(orders) + parser_rejections


def _reasons(rejections: Iterable[Any]) -> Iterable[str]:
    for rejection in rejections:
        reason = rejection.get("reason") if isinstance(rejection, dict) else None
        yield str(reason) if reason else "unknown"
