"""Shared pieces of the LLM tests: a real market context, the recorded provider envelopes, a fake clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.adapters.agents.factory import AgentClientRegistry
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.config import Settings
from shared.domain.model import Agent, Portfolio, Position
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot
from shared.services.cycle import CycleReport, run_cycle
from shared.services.ports import AgentContext, UnitOfWorkFactory
from shared.services.seed import DEFAULT_ASSETS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "llm"
CYCLE = datetime(2024, 3, 14, 12, tzinfo=UTC)  # around BTC's March 2024 high: a market worth deciding on
SYMBOLS = ("BNB", "BTC", "ETH", "SOL", "XRP")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=8)
def real_snapshot(cycle_time: datetime = CYCLE, candles: int = 48) -> MarketSnapshot:
    """The bundled 2024 hourly candles of the five seeded assets: what a real cycle shows a model."""
    provider = ReplayMarketDataProvider()
    rows = provider.fetch_candles(DEFAULT_ASSETS, start=cycle_time - timedelta(hours=candles), end=cycle_time)
    by_symbol: dict[str, list[Any]] = {}
    for candle in rows:
        by_symbol.setdefault(candle.symbol, []).append(candle)
    return MarketSnapshot.build(cycle_time, {s: c[-candles:] for s, c in by_symbol.items()})


def holding_portfolio(agent_id: int = 1) -> Portfolio:
    return Portfolio(
        agent_id,
        Decimal("61234.56"),
        {"BTC": Position(Decimal("0.35"), Decimal("64012.5")), "SOL": Position(Decimal("42.5"), Decimal("141.2"))},
        fees_paid=Decimal("45.12"),
        trade_count=4,
    )


def context(
    *, portfolio: Portfolio | None = None, snapshot: MarketSnapshot | None = None, rules: RaceRules | None = None
) -> AgentContext:
    snap = snapshot or real_snapshot()
    agent = Agent(1, "Llama test", "llama", "llama-3.3-70b-versatile")
    return AgentContext(agent, snap.cycle_time, snap, portfolio or holding_portfolio(), rules or RaceRules())


def completion_envelope(content: str | None, *, model: str = "llama-3.3-70b-versatile") -> dict[str, Any]:
    """Groq's recorded JSON-mode envelope (pydantic-ai cassette, see fixtures/llm/README.md) with our content."""
    envelope = fixture("groq_chat_completion_json_object_gpt-oss-120b.json")["response"]["json"]
    envelope["model"] = model
    envelope["choices"][0]["message"]["content"] = content
    envelope["choices"][0]["message"].pop("reasoning", None)
    return envelope


class FakeMonotonic:
    """A monotonic clock and sleep that only move when told (or slept on)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_one_llm_cycle(
    uow_factory: UnitOfWorkFactory, settings: Settings, *, cycle_time: datetime = CYCLE, max_concurrency: int = 32
) -> CycleReport:
    """One real cycle (`run_cycle`) of the agents the registry builds from `settings`, with the providers'
    connection pools closed afterwards, as the timer job does."""
    registry = AgentClientRegistry.from_settings(settings)

    async def cycle() -> CycleReport:
        try:
            return await run_cycle(
                uow_factory=uow_factory,
                clients=registry,
                cycle_time=cycle_time,
                rules=RaceRules(),
                interval="1h",
                snapshot_candles=48,
                agent_timeout_s=settings.race.agent_timeout_seconds,
                max_concurrency=max_concurrency,
            )
        finally:
            await registry.aclose()

    return asyncio.run(cycle())
