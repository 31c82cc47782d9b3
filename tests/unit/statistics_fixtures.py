"""Builders for the statistics tests: equity curves from real bundled candles and from written-out numbers."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.adapters.market_data.replay import BUNDLED_CANDLES_DIR
from shared.domain.model import Side
from shared.domain.statistics import AgentInputs, DecisionFacts, EquityMark, Fill

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
D = Decimal


def bundled_closes_by_time(symbol: str) -> dict[str, Decimal]:
    """The hourly closes of a bundled 2024 candle file by open time, as written (text -> Decimal)."""
    with gzip.open(BUNDLED_CANDLES_DIR / f"{symbol}_1h.csv.gz", "rt", newline="") as handle:
        return {row["timestamp"]: D(row["close"]) for row in csv.DictReader(handle)}


def bundled_closes(symbol: str) -> list[Decimal]:
    return list(bundled_closes_by_time(symbol).values())


def marks_of(equities: Sequence[Decimal | float | str], cash: Sequence[Decimal] | None = None) -> list[EquityMark]:
    """Hourly marks from T0; cash equals equity (nothing invested) unless given."""
    values = [v if isinstance(v, Decimal) else D(str(v)) for v in equities]
    cash_values = list(cash) if cash is not None else values
    return [EquityMark(T0 + i * HOUR, v, c) for i, (v, c) in enumerate(zip(values, cash_values, strict=True))]


def fill(hour: float, side: Side, quantity: str, price: str, fee: str, symbol: str = "BTC") -> Fill:
    return Fill(T0 + timedelta(hours=hour), symbol, side, D(quantity), D(price), D(fee))


def decision(
    hour: int,
    *,
    parse_failed: bool = False,
    hold_code: str | None = None,
    orders: int = 0,
    rejections: tuple[str, ...] = (),
    latency_ms: float | None = None,
    cost_usd: str | None = None,
    confidence: float | None = None,
    traded: bool = False,
) -> DecisionFacts:
    return DecisionFacts(
        at=T0 + hour * HOUR,
        parse_failed=parse_failed,
        hold_code=hold_code,
        orders=orders,
        rejection_reasons=rejections,
        latency_ms=latency_ms,
        cost_usd=D(cost_usd) if cost_usd is not None else None,
        confidence=confidence,
        traded=traded,
    )


def agent(
    agent_id: int,
    marks: Sequence[EquityMark],
    *,
    name: str | None = None,
    fills: Sequence[Fill] = (),
    decisions: Sequence[DecisionFacts] = (),
) -> AgentInputs:
    return AgentInputs(agent_id, name or f"agent-{agent_id}", list(marks), list(fills), list(decisions))
