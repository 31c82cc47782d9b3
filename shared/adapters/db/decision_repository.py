"""Decisions with their audit trail, the trades they made and the LLM usage they add to their agent's totals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, Connection, CursorResult, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.decision_inputs import replay_input_values
from shared.adapters.db.tables import DECISIONS, PORTFOLIOS, TRADES
from shared.adapters.db.types import ScaledDecimal, require_aware
from shared.adapters.db.write_statements import (
    ON_CONFLICT_DIALECTS,
    insert_ignoring_conflict,
    insert_into,
    insert_unless_exists,
    inserted_id,
)
from shared.domain.model import DecisionStatus, Trade
from shared.domain.order_records import order_record, rejection_record
from shared.services.ports import DecisionRecord, DuplicateDecisionError

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
            statement = insert_ignoring_conflict(DECISIONS, ("agent_id", "cycle_time"), self._dialect_name)
            if cast(CursorResult[Any], self._connection.execute(statement, values)).rowcount != 1:
                raise DuplicateDecisionError(duplicate)
            self._add_llm_usage(record)
            return
        if self._on_conflict:
            statement = insert_unless_exists(DECISIONS, ("agent_id", "cycle_time"), self._dialect_name)
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
                    decision_id = inserted_id(self._connection.execute(insert_into(DECISIONS), values))
            except IntegrityError as exc:
                raise DuplicateDecisionError(duplicate) from exc
        self._add_llm_usage(record)
        if record.trades:
            self._connection.execute(
                insert_into(TRADES), [_trade_values(decision_id, record, trade) for trade in record.trades]
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
                self._connection.execute(insert_into(DECISIONS), untraded)
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
            self._connection.execute(insert_into(TRADES), trades)
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


# The recorded shapes, under the names this module has always exported.
order_to_json = order_record
rejection_to_json = rejection_record
