"""`SqlAlchemyReplayStore`: the read-only `ReplayStore` of shared.services.replay, one connection per read.

Candles are read by the cycle's own window query without the candle cache: a replay checks what is stored
now, not what a process remembers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from shared.adapters.db.candles import SqlAlchemyCandleRepository
from shared.adapters.db.repositories import DECISIONS, TRADES, SqlAlchemyAgentRepository
from shared.adapters.db.types import require_aware
from shared.domain.decision_inputs import DecisionInputs, InputsFormatError, inputs_from_json
from shared.domain.model import Agent, Candle, Side, Trade
from shared.services.replay import StoredDecision, fill_json

_DECISION = select(DECISIONS)
_FILLS = select(TRADES).order_by(TRADES.c.id)


class SqlAlchemyReplayStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def decision(self, decision_id: int) -> StoredDecision | None:
        with self.engine.connect() as connection:
            row = connection.execute(_DECISION.where(DECISIONS.c.id == decision_id)).first()
            if row is None:
                return None
            fills = connection.execute(_FILLS.where(TRADES.c.decision_id == decision_id)).all()
        inputs, problem = _inputs(row)
        return StoredDecision(
            id=row.id,
            agent_id=row.agent_id,
            cycle_time=require_aware(row.cycle_time),
            snapshot_sha256=row.snapshot_sha256,
            reasoning=row.reasoning,
            confidence=row.confidence,
            hold_reason=row.hold_reason,
            orders=list(row.orders),
            rejections=list(row.rejections),
            fills=[fill_json(Trade(f.symbol, Side(f.side), f.quantity, f.price, f.notional, f.fee)) for f in fills],
            prompt=row.prompt,
            inputs=inputs,
            inputs_problem=problem,
        )

    def agent(self, agent_id: int) -> Agent | None:
        with self.engine.connect() as connection:
            return SqlAlchemyAgentRepository(connection).get(agent_id)

    def candle_window(
        self, symbols: Iterable[str], interval: str, *, at: datetime, count: int
    ) -> dict[str, list[Candle]]:
        with self.engine.connect() as connection:
            return SqlAlchemyCandleRepository(connection).window(symbols, interval, at=at, count=count)


def _inputs(row: Any) -> tuple[DecisionInputs | None, str | None]:
    stored = (row.portfolio_before, row.model_settings, row.race_settings)
    if all(value is None for value in stored):
        return None, None  # recorded before migration 0007: the service says so
    if any(value is None for value in stored):
        return None, "its replay inputs are incomplete"
    try:
        inputs = inputs_from_json(
            row.agent_id,
            portfolio=row.portfolio_before,
            race_settings=row.race_settings,
            model_settings=row.model_settings,
        )
    except InputsFormatError as exc:
        return None, f"its replay inputs cannot be read ({exc})"
    return inputs, None
