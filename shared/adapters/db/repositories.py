"""SQLAlchemy implementations of the write-side repository ports, mapping rows to domain dataclasses.

Everything runs on one Core `Connection` per unit of work, with statements built once at import (bound
parameters): a year-long replay runs these tens of thousands of times, and building a select() per call, or
the ORM session around it, costs more than the database work. Inserts that must not duplicate a row use
`ON CONFLICT DO NOTHING` where the dialect has it (one statement, and the transaction stays usable), and
check-then-insert inside a savepoint elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    CursorResult,
    Insert,
    Result,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.candles import SqlAlchemyCandleRepository
from shared.adapters.db.decision_inputs import replay_input_values
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
from shared.adapters.db.types import ScaledDecimal, require_aware
from shared.domain.model import (
    Agent,
    Asset,
    DecisionStatus,
    EquitySnapshot,
    Order,
    Portfolio,
    Position,
    Rejection,
    Trade,
)
from shared.services.ports import CycleRecord, DecisionRecord, DuplicateDecisionError, VersionedPortfolio

__all__ = [
    "SqlAlchemyAgentRepository",
    "SqlAlchemyAssetRepository",
    "SqlAlchemyCandleRepository",
    "SqlAlchemyCycleRepository",
    "SqlAlchemyDecisionRepository",
    "SqlAlchemyEquityRepository",
    "SqlAlchemyPortfolioRepository",
]


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


_ASSETS_ALL = select(ASSETS).order_by(ASSETS.c.symbol)
_ASSETS_ACTIVE = _ASSETS_ALL.where(ASSETS.c.active.is_(True))
_AGENTS_ALL = select(AGENTS).order_by(AGENTS.c.id)
_AGENTS_ACTIVE = _AGENTS_ALL.where(AGENTS.c.active.is_(True))
_AGENT_BY_ID = select(AGENTS).where(AGENTS.c.id == bindparam("agent_id"))
_AGENT_BY_NAME = select(AGENTS).where(AGENTS.c.name == bindparam("name"))
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
# Increments, not a read-modify-write: concurrent decisions of one agent never lose usage, and the portfolio's
# version is left alone (usage is not part of what a cycle's optimistic replace protects).
_ADD_LLM_USAGE = (
    update(PORTFOLIOS)
    .where(PORTFOLIOS.c.agent_id == bindparam("key_agent_id"))
    .values(
        prompt_tokens=PORTFOLIOS.c.prompt_tokens + bindparam("add_prompt_tokens", type_=BigInteger()),
        completion_tokens=PORTFOLIOS.c.completion_tokens + bindparam("add_completion_tokens", type_=BigInteger()),
        llm_cost_usd=PORTFOLIOS.c.llm_cost_usd + bindparam("add_llm_cost_usd", type_=ScaledDecimal()),
    )
)
# Both seek on the decisions' cycle_time index: one cycle's rows, however long the race has run.
_DECIDED_AGENT_IDS = select(DECISIONS.c.agent_id).where(DECISIONS.c.cycle_time == bindparam("cycle_time"))
_CYCLE_TOTALS = select(func.count(), func.coalesce(func.sum(DECISIONS.c.trade_count), 0)).where(
    DECISIONS.c.cycle_time == bindparam("cycle_time")
)
_DECISIONS_LATEST_CYCLE = select(func.max(DECISIONS.c.cycle_time))  # one seek on ix_decisions_cycle_time
# Many decisions in one executemany, their new ids back in the order of the rows sent (insertmanyvalues).
_INSERT_DECISIONS_RETURNING_IDS = insert(DECISIONS).returning(DECISIONS.c.id, sort_by_parameter_order=True)
_DECISION_EXISTS = select(
    exists().where(DECISIONS.c.agent_id == bindparam("agent_id"), DECISIONS.c.cycle_time == bindparam("cycle_time"))
)
_EQUITY_LATEST = select(EQUITY).where(EQUITY.c.agent_id == bindparam("agent_id")).order_by(EQUITY.c.at.desc()).limit(1)
# Driven by the agents table: per agent one seek for MAX(at) on the (agent_id, at) key and one for the row,
# where a correlation on the snapshots themselves would evaluate the subquery for every stored snapshot.
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
_CYCLE_VALUES = ("snapshot_sha256", "agents", "decisions", "trades", "started_at", "finished_at")
_CYCLES_LATEST = select(func.max(CYCLES.c.cycle_time))
ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")


@functools.cache
def _insert_ignoring_conflict(table: Table, key: tuple[str, ...], dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING: its row count is 1 when the row was written, 0 when not."""
    base = sqlite.insert(table) if dialect_name == "sqlite" else postgresql.insert(table)
    return base.on_conflict_do_nothing(index_elements=[table.c[name] for name in key])


@functools.cache
def _insert_unless_exists(table: Table, key: tuple[str, ...], dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING the key: a row comes back only when one was written."""
    returned = table.c.id if "id" in table.c else table.c[key[0]]
    return _insert_ignoring_conflict(table, key, dialect_name).returning(returned)


class SqlAlchemyAssetRepository:
    """Tradable assets; the live provider's id is data, so adding an asset needs no code change."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def list(self, *, active_only: bool = True) -> list[Asset]:
        statement = _ASSETS_ACTIVE if active_only else _ASSETS_ALL
        return [Asset(r.symbol, r.name, r.coingecko_id, r.active) for r in self._connection.execute(statement)]

    def upsert(self, asset: Asset) -> None:
        values = {"name": asset.name, "coingecko_id": asset.coingecko_id, "active": asset.active}
        _update_or_insert(self._connection, ASSETS, {"symbol": asset.symbol}, values)


class SqlAlchemyAgentRepository:
    """Racers; `name` is unique, `id` is assigned by the database."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def list(self, *, active_only: bool = False) -> list[Agent]:
        statement = _AGENTS_ACTIVE if active_only else _AGENTS_ALL
        return [_agent(row) for row in self._connection.execute(statement)]

    def get(self, agent_id: int) -> Agent | None:
        row = self._connection.execute(_AGENT_BY_ID, {"agent_id": agent_id}).first()
        return _agent(row) if row else None

    def get_by_name(self, name: str) -> Agent | None:
        row = self._connection.execute(_AGENT_BY_NAME, {"name": name}).first()
        return _agent(row) if row else None

    def add(self, agent: Agent) -> Agent:
        result = self._connection.execute(
            _insert(AGENTS),
            {
                "name": agent.name,
                "provider": agent.provider,
                "model": agent.model,
                "strategy": agent.strategy,
                "params": dict(agent.params),
                "active": agent.active,
                "inactive_reason": agent.inactive_reason,
                "created_at": datetime.now(UTC),
            },
        )
        new_id = _inserted_id(result)
        return Agent(
            new_id,
            agent.name,
            agent.provider,
            agent.model,
            agent.strategy,
            dict(agent.params),
            agent.active,
            agent.inactive_reason,
        )

    def set_active(self, agent_id: int, *, active: bool, reason: str | None) -> None:
        _update_or_insert(
            self._connection,
            AGENTS,
            {"id": agent_id},
            {"active": active, "inactive_reason": reason},
            insert_missing=False,
        )


def _agent(row: Any) -> Agent:
    return Agent(
        row.id, row.name, row.provider, row.model, row.strategy, dict(row.params or {}), row.active, row.inactive_reason
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
            self._connection.execute(_insert(PORTFOLIOS), values)
        self._connection.execute(_DELETE_POSITIONS, {"agent_id": agent_id})
        rows = [
            {"agent_id": agent_id, "symbol": symbol, "quantity": p.quantity, "avg_cost": p.avg_cost}
            for symbol, p in sorted(portfolio.positions.items())
        ]
        if rows:
            self._connection.execute(_insert(POSITIONS), rows)
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
            self._connection.execute(_insert(POSITIONS), added)
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


class SqlAlchemyDecisionRepository:
    """Decisions with their audit trail and trades, unique on (agent, cycle)."""

    def __init__(self, connection: Connection, *, on_conflict: bool | None = None) -> None:
        self._connection = connection
        self._dialect_name = connection.dialect.name
        self._on_conflict = self._dialect_name in ON_CONFLICT_DIALECTS if on_conflict is None else on_conflict

    def decided_agent_ids(self, cycle_time: datetime) -> set[int]:
        parameters = {"cycle_time": require_aware(cycle_time)}
        return set(self._connection.execute(_DECIDED_AGENT_IDS, parameters).scalars())

    def cycle_totals(self, cycle_time: datetime) -> tuple[int, int]:
        row = self._connection.execute(_CYCLE_TOTALS, {"cycle_time": require_aware(cycle_time)}).one()
        return int(row[0]), int(row[1])

    def add(self, record: DecisionRecord) -> None:
        cycle_time = require_aware(record.cycle_time)
        duplicate = f"agent {record.agent_id} already has a decision for cycle {cycle_time}"
        values = _decision_values(record, cycle_time)
        if self._on_conflict and not record.trades and self._dialect_name == "sqlite":
            # No trade rows to point at the decision: the row count says whether it was written, and the
            # statement skips RETURNING's result set (most decisions are holds). Not on PostgreSQL: it
            # returns the new id implicitly anyway, and its row count then does not say what was written.
            statement = _insert_ignoring_conflict(DECISIONS, ("agent_id", "cycle_time"), self._dialect_name)
            if cast(CursorResult[Any], self._connection.execute(statement, values)).rowcount != 1:
                raise DuplicateDecisionError(duplicate)
            self._add_llm_usage(record)
            return
        if self._on_conflict:
            statement = _insert_unless_exists(DECISIONS, ("agent_id", "cycle_time"), self._dialect_name)
            decision_id = self._connection.execute(statement, values).scalar()
            if decision_id is None:
                raise DuplicateDecisionError(duplicate)
        else:
            parameters = {"agent_id": record.agent_id, "cycle_time": cycle_time}
            if self._connection.execute(_DECISION_EXISTS, parameters).scalar():
                raise DuplicateDecisionError(duplicate)
            try:
                # A savepoint, so a concurrent writer's row (the unique constraint firing) leaves this unit of
                # work usable and unchanged, as the port promises.
                with self._connection.begin_nested():
                    decision_id = _inserted_id(self._connection.execute(_insert(DECISIONS), values))
            except IntegrityError as exc:
                raise DuplicateDecisionError(duplicate) from exc
        self._add_llm_usage(record)
        if record.trades:
            self._connection.execute(
                _insert(TRADES), [_trade_values(decision_id, record, trade) for trade in record.trades]
            )

    def add_many(self, records: Sequence[DecisionRecord]) -> None:
        if not records:
            return
        rows = [_decision_values(record, require_aware(record.cycle_time)) for record in records]
        # Only decisions with trades need their new id (the trades point at it); most decisions are holds,
        # and a plain executemany without RETURNING is the cheapest insert there is.
        traded = [index for index, record in enumerate(records) if record.trades]
        untraded = [rows[index] for index, record in enumerate(records) if not record.trades]
        try:
            if untraded:
                self._connection.execute(_insert(DECISIONS), untraded)
            ids = (
                list(self._connection.execute(_INSERT_DECISIONS_RETURNING_IDS, [rows[i] for i in traded]).scalars())
                if traded
                else []
            )
        except IntegrityError as exc:
            raise DuplicateDecisionError(
                f"some of these {len(records)} decisions (cycles {records[0].cycle_time} to "
                f"{records[-1].cycle_time}) already exist"
            ) from exc
        trades = [
            _trade_values(decision_id, records[index], trade)
            for decision_id, index in zip(ids, traded, strict=True)
            for trade in records[index].trades
        ]
        if trades:
            self._connection.execute(_insert(TRADES), trades)
        usage = [parameters for record in records if (parameters := _llm_usage_parameters(record)) is not None]
        if usage:
            self._connection.execute(_ADD_LLM_USAGE, usage)

    def latest_cycle_time(self) -> datetime | None:
        latest: datetime | None = self._connection.execute(_DECISIONS_LATEST_CYCLE).scalar_one_or_none()
        return latest

    def _add_llm_usage(self, record: DecisionRecord) -> None:
        """Add the decision's tokens and cost to its agent's running totals. Only decisions that report usage
        (LLM calls) pay this statement; the cycle has written the agent's portfolio row by then."""
        parameters = _llm_usage_parameters(record)
        if parameters is not None:
            self._connection.execute(_ADD_LLM_USAGE, parameters)


def _llm_usage_parameters(record: DecisionRecord) -> dict[str, Any] | None:
    """`_ADD_LLM_USAGE`'s parameters for a decision that reports usage; None for one that does not."""
    decision = record.decision
    prompt, completion, cost = decision.prompt_tokens, decision.completion_tokens, decision.cost_usd
    if prompt is None and completion is None and cost is None:
        return None
    return {
        "key_agent_id": record.agent_id,
        "add_prompt_tokens": prompt or 0,
        "add_completion_tokens": completion or 0,
        "add_llm_cost_usd": cost if cost is not None else Decimal(0),
    }


def _trade_values(decision_id: int, record: DecisionRecord, trade: Trade) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "agent_id": record.agent_id,
        "cycle_time": require_aware(record.cycle_time),
        "symbol": trade.symbol,
        "side": str(trade.side),
        "quantity": trade.quantity,
        "price": trade.price,
        "notional": trade.notional,
        "fee": trade.fee,
    }


def _decision_values(record: DecisionRecord, cycle_time: datetime) -> dict[str, Any]:
    decision = record.decision
    status = DecisionStatus.OK if decision.hold_reason is None else DecisionStatus.HOLD_FALLBACK
    return {
        "agent_id": record.agent_id,
        "cycle_time": cycle_time,
        "status": str(status),
        "reasoning": decision.reasoning,
        "confidence": decision.confidence,
        "hold_reason": decision.hold_reason,
        "orders": [order_to_json(order) for order in decision.orders],
        "rejections": [rejection_to_json(rejection) for rejection in record.rejections],
        "trade_count": len(record.trades),
        "snapshot_sha256": record.snapshot_sha256,
        "data_staleness_seconds": record.data_staleness_seconds,
        "prompt": decision.prompt,
        "raw_response": decision.raw_response,
        "latency_ms": decision.latency_ms,
        "prompt_tokens": decision.prompt_tokens,
        "completion_tokens": decision.completion_tokens,
        "cost_usd": decision.cost_usd,
        "decided_at": require_aware(record.decided_at),
        **replay_input_values(decision.inputs),
    }


def order_to_json(order: Order) -> dict[str, Any]:
    """Decimals as strings: JSON numbers would pass through binary floats."""
    return {
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": _decimal_text(order.quantity),
        "notional_usd": _decimal_text(order.notional_usd),
    }


def rejection_to_json(rejection: Rejection) -> dict[str, Any]:
    order = (
        order_to_json(rejection.order)
        if rejection.order is not None
        else {"symbol": None, "side": None, "quantity": None, "notional_usd": None}
    )
    return order | {"reason": str(rejection.reason), "detail": rejection.detail}


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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
            statement = _insert_unless_exists(EQUITY, ("agent_id", "at"), self._dialect_name)
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
                self._connection.execute(_insert(EQUITY), values)
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
        statement = _insert_unless_exists(EQUITY, ("agent_id", "at"), self._dialect_name)
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


class SqlAlchemyCycleRepository:
    """Finished cycles; recording a cycle again replaces its counters."""

    def __init__(self, connection: Connection, *, on_conflict: bool | None = None) -> None:
        self._connection = connection
        self._dialect_name = connection.dialect.name
        self._on_conflict = self._dialect_name in ON_CONFLICT_DIALECTS if on_conflict is None else on_conflict

    def add(self, record: CycleRecord) -> None:
        values = _cycle_values(record)
        key = {"cycle_time": values.pop("cycle_time")}
        _update_or_insert(self._connection, CYCLES, key, values)

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
            self._connection.execute(_insert(CYCLES), [_cycle_values(record) for record in records])

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


def _update_or_insert(
    connection: Connection,
    table: Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    insert_missing: bool = True,
) -> None:
    """Portable single-row upsert: UPDATE by key, INSERT when nothing matched (the row's writer is unique:
    one agent's cycle, one asset seed, one cycle record). `insert_missing=False`: UPDATE only."""
    statement = _update_by_key(table, tuple(key), tuple(values))
    parameters = {f"key_{name}": value for name, value in key.items()} | {
        f"new_{name}": value for name, value in values.items()
    }
    result = connection.execute(statement, parameters)
    if insert_missing and cast(CursorResult[Any], result).rowcount == 0:
        connection.execute(_insert(table), {**key, **values})


@functools.cache
def _insert(table: Table) -> Insert:
    return table.insert()


@functools.cache
def _update_by_key(table: Table, key: tuple[str, ...], names: tuple[str, ...]) -> Update:
    # Built once per shape with bound parameters: a replay runs this tens of thousands of times, and
    # statements with inline values cost more to build than to execute.
    return (
        update(table)
        .where(*(table.c[name] == bindparam(f"key_{name}") for name in key))
        .values({name: bindparam(f"new_{name}") for name in names})
    )


def _inserted_id(result: Result[Any]) -> int:
    """The id the database assigned to a single-row INSERT (RETURNING, OUTPUT or lastrowid, per dialect)."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    new_id = key[0] if key else None
    if not isinstance(new_id, int):
        raise RuntimeError(f"the database returned no id for the inserted row: {key!r}")
    return new_id
