"""SQLAlchemy implementations of the write-side repository ports, mapping rows to domain dataclasses.

Writes use Core statements (executemany for trades), not ORM unit-of-work flushes: a year-long replay writes
tens of thousands of decisions, trades and equity rows, and the ORM's per-object bookkeeping buys nothing here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, Update, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.adapters.db.candles import SqlAlchemyCandleRepository
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
from shared.adapters.db.types import require_aware
from shared.domain.model import (
    Agent,
    Asset,
    DecisionStatus,
    EquitySnapshot,
    Order,
    Portfolio,
    Position,
    Rejection,
)
from shared.services.ports import CycleRecord, DecisionRecord, DuplicateDecisionError

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


class SqlAlchemyAssetRepository:
    """Tradable assets; the live provider's id is data, so adding an asset needs no code change."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def list(self, *, active_only: bool = True) -> list[Asset]:
        statement = select(ASSETS).order_by(ASSETS.c.symbol)
        if active_only:
            statement = statement.where(ASSETS.c.active.is_(True))
        return [Asset(r.symbol, r.name, r.coingecko_id, r.active) for r in self._session.execute(statement)]

    def upsert(self, asset: Asset) -> None:
        values = {"name": asset.name, "coingecko_id": asset.coingecko_id, "active": asset.active}
        _update_or_insert(self._session, ASSETS, {"symbol": asset.symbol}, values)


class SqlAlchemyAgentRepository:
    """Racers; `name` is unique, `id` is assigned by the database."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def list(self, *, active_only: bool = False) -> list[Agent]:
        statement = select(AGENTS).order_by(AGENTS.c.id)
        if active_only:
            statement = statement.where(AGENTS.c.active.is_(True))
        return [_agent(row) for row in self._session.execute(statement)]

    def get(self, agent_id: int) -> Agent | None:
        row = self._session.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).first()
        return _agent(row) if row else None

    def get_by_name(self, name: str) -> Agent | None:
        row = self._session.execute(select(AGENTS).where(AGENTS.c.name == name)).first()
        return _agent(row) if row else None

    def add(self, agent: Agent) -> Agent:
        result = self._session.execute(
            insert(AGENTS).values(
                name=agent.name,
                provider=agent.provider,
                model=agent.model,
                strategy=agent.strategy,
                params=dict(agent.params),
                active=agent.active,
                inactive_reason=agent.inactive_reason,
                created_at=datetime.now(UTC),
            )
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
        self._session.execute(
            update(AGENTS).where(AGENTS.c.id == agent_id).values(active=active, inactive_reason=reason)
        )


def _agent(row: Any) -> Agent:
    return Agent(
        row.id, row.name, row.provider, row.model, row.strategy, dict(row.params or {}), row.active, row.inactive_reason
    )


class SqlAlchemyPortfolioRepository:
    """Cash and counters on one row, positions on their own rows; `save` replaces the whole set."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, agent_id: int) -> Portfolio | None:
        row = self._session.execute(select(PORTFOLIOS).where(PORTFOLIOS.c.agent_id == agent_id)).first()
        if row is None:
            return None
        positions = {
            p.symbol: Position(p.quantity, p.avg_cost)
            for p in self._session.execute(
                select(POSITIONS).where(POSITIONS.c.agent_id == agent_id).order_by(POSITIONS.c.symbol)
            )
        }
        return Portfolio(agent_id, row.cash, positions, row.fees_paid, row.trade_count)

    def save(self, portfolio: Portfolio) -> None:
        values = {
            "cash": portfolio.cash,
            "fees_paid": portfolio.fees_paid,
            "trade_count": portfolio.trade_count,
            "updated_at": datetime.now(UTC),
        }
        _update_or_insert(self._session, PORTFOLIOS, {"agent_id": portfolio.agent_id}, values)
        self._session.execute(delete(POSITIONS).where(POSITIONS.c.agent_id == portfolio.agent_id))
        rows = [
            {"agent_id": portfolio.agent_id, "symbol": symbol, "quantity": p.quantity, "avg_cost": p.avg_cost}
            for symbol, p in sorted(portfolio.positions.items())
        ]
        if rows:
            self._session.execute(insert(POSITIONS), rows)


class SqlAlchemyDecisionRepository:
    """Decisions with their audit trail and trades, unique on (agent, cycle)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def decided_agent_ids(self, cycle_time: datetime) -> set[int]:
        statement = select(DECISIONS.c.agent_id).where(DECISIONS.c.cycle_time == require_aware(cycle_time))
        return set(self._session.execute(statement).scalars())

    def add(self, record: DecisionRecord) -> None:
        cycle_time = require_aware(record.cycle_time)
        already = select(exists().where(DECISIONS.c.agent_id == record.agent_id, DECISIONS.c.cycle_time == cycle_time))
        if self._session.execute(already).scalar():
            raise DuplicateDecisionError(f"agent {record.agent_id} already has a decision for cycle {cycle_time}")
        try:
            # A savepoint, so a concurrent writer's row (the unique constraint firing) leaves this unit of
            # work usable and unchanged, as the port promises.
            with self._session.begin_nested():
                result = self._session.execute(insert(DECISIONS), _decision_values(record, cycle_time))
        except IntegrityError as exc:
            raise DuplicateDecisionError(
                f"agent {record.agent_id} already has a decision for cycle {cycle_time}"
            ) from exc
        decision_id = _inserted_id(result)
        if record.trades:
            self._session.execute(
                insert(TRADES),
                [
                    {
                        "decision_id": decision_id,
                        "agent_id": record.agent_id,
                        "cycle_time": cycle_time,
                        "symbol": trade.symbol,
                        "side": str(trade.side),
                        "quantity": trade.quantity,
                        "price": trade.price,
                        "notional": trade.notional,
                        "fee": trade.fee,
                    }
                    for trade in record.trades
                ],
            )


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
    return order_to_json(rejection.order) | {"reason": str(rejection.reason), "detail": rejection.detail}


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class SqlAlchemyEquityRepository:
    """Marks to market, unique on (agent, at)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def latest(self, agent_id: int) -> EquitySnapshot | None:
        statement = select(EQUITY).where(EQUITY.c.agent_id == agent_id).order_by(EQUITY.c.at.desc()).limit(1)
        row = self._session.execute(statement).first()
        if row is None:
            return None
        return EquitySnapshot(row.agent_id, row.at, row.equity, row.cash, row.peak_equity, row.max_drawdown)

    def add(self, snapshot: EquitySnapshot) -> bool:
        at = require_aware(snapshot.at)
        already = select(exists().where(EQUITY.c.agent_id == snapshot.agent_id, EQUITY.c.at == at))
        if self._session.execute(already).scalar():
            return False
        values = {
            "agent_id": snapshot.agent_id,
            "at": at,
            "equity": snapshot.equity,
            "cash": snapshot.cash,
            "peak_equity": snapshot.peak_equity,
            "max_drawdown": snapshot.max_drawdown,
        }
        try:
            with self._session.begin_nested():  # a concurrent writer got there first: not an error
                self._session.execute(insert(EQUITY), values)
        except IntegrityError:
            return False
        return True


class SqlAlchemyCycleRepository:
    """Finished cycles; recording a cycle again updates its counters."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: CycleRecord) -> None:
        values = {
            "snapshot_sha256": record.snapshot_sha256,
            "agents": record.agents,
            "decisions": record.decisions,
            "trades": record.trades,
            "started_at": require_aware(record.started_at),
            "finished_at": require_aware(record.finished_at),
        }
        _update_or_insert(self._session, CYCLES, {"cycle_time": require_aware(record.cycle_time)}, values)

    def latest_time(self) -> datetime | None:
        latest: datetime | None = self._session.execute(select(func.max(CYCLES.c.cycle_time))).scalar_one_or_none()
        return latest


def _update_or_insert(session: Session, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Portable single-row upsert: UPDATE by key, INSERT when nothing matched (the row's writer is unique:
    one agent's cycle, one asset seed, one cycle record)."""
    statement = _update_by_key(table, tuple(key), tuple(values))
    parameters = {f"key_{name}": value for name, value in key.items()} | {
        f"new_{name}": value for name, value in values.items()
    }
    result = session.execute(statement, parameters)
    if cast(CursorResult[Any], result).rowcount == 0:
        session.execute(insert(table), {**key, **values})


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
