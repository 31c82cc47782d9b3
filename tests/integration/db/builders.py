"""Small builders of domain objects for the persistence tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.domain.model import (
    Agent,
    AgentDecision,
    Candle,
    Order,
    Rejection,
    RejectionReason,
    Side,
    Trade,
)
from shared.services.ports import DecisionRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def candle(symbol: str, open_time: datetime, close: str | int = 100, *, interval: str = "1h") -> Candle:
    price = Decimal(close)
    return Candle(symbol, interval, open_time, price, price + 1, price - 1, price, Decimal("12.5"))


def hourly(symbol: str, count: int, *, start: datetime = T0, first_close: int = 100) -> list[Candle]:
    return [candle(symbol, start + i * HOUR, first_close + i) for i in range(count)]


def agent(name: str = "momentum") -> Agent:
    return Agent(0, name, "baseline", name, strategy="follow the trend", params={"lookback": 24})


def decision_record(agent_id: int, cycle_time: datetime, *, trades: int = 1, hold: str | None = None) -> DecisionRecord:
    buy = Order("BTC", Side.BUY, quantity=Decimal("0.05"))
    rejected = Order("DOGE", Side.BUY, notional_usd=Decimal(50))
    decision = (
        AgentDecision.hold(hold, prompt="p", raw_response="r")
        if hold
        else AgentDecision(
            orders=(buy, rejected),
            reasoning="BTC looks strong",
            confidence=0.62,
            prompt="prompt text",
            raw_response='{"orders": []}',
            latency_ms=123.5,
            prompt_tokens=900,
            completion_tokens=80,
            cost_usd=Decimal("0.00012345"),
        )
    )
    executed = tuple(
        Trade("BTC", Side.BUY, Decimal("0.05"), Decimal("42000.5"), Decimal("2100.025"), Decimal("2.100025"))
        for _ in range(0 if hold else trades)
    )
    return DecisionRecord(
        agent_id=agent_id,
        cycle_time=cycle_time,
        snapshot_sha256="ab" * 32,
        decision=decision,
        trades=executed,
        rejections=() if hold else (Rejection(rejected, RejectionReason.UNKNOWN_SYMBOL, "DOGE is not traded"),),
        data_staleness_seconds=0.0,
        decided_at=cycle_time + timedelta(seconds=3),
    )
