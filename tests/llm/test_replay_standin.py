"""Replaying an LLM agent's decision against the stand-in provider (the recorded Groq envelopes): the same
model gets the very same request again and answers identically; another model, asked the same prompt, gives
a counterfactual; a provider that fails during the replay is a recorded-style HOLD, and nothing is written."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from shared.adapters.db.models import DecisionRow, EquitySnapshotRow, PortfolioRow, PositionRow, TradeRow
from shared.bootstrap import Container
from shared.config import ConnectionStrings, LlamaSettings, MarketDataSettings, Settings
from shared.local_race import prepare
from tests.llm.standin import StandInServer, decision_reply, server_error

START = datetime(2024, 3, 10, tzinfo=UTC)
MODEL = "llama-3.3-70b-versatile"
OTHER = "llama-3.1-8b-instant"
BUY = json.dumps(
    {"orders": [{"symbol": "BTC", "side": "BUY", "notional_usd": 1000}], "reasoning": "trend", "confidence": 0.6}
)
SELL_NOTHING = json.dumps(
    {"orders": [{"symbol": "ETH", "side": "SELL", "quantity": 1}], "reasoning": "fade it", "confidence": 0.3}
)


def _race(db: Path, standin: StandInServer) -> tuple[Container, int]:
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
        Llama=LlamaSettings(Provider="openai_compatible", BaseUrl=standin.base_url, Model=MODEL, MaxRetries=0),
    )
    container = prepare(settings)

    async def run() -> None:
        for at in (START, START + timedelta(hours=1)):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            container.run_equity_job(at)

    asyncio.run(run())
    with container.uow_factory() as uow:
        [llm] = [a for a in uow.agents.list(active_only=True) if a.provider == "llama"]
    return container, llm.id


def _state(container: Container) -> list[list[tuple[Any, ...]]]:
    with container.uow_factory() as uow:
        connection: Any = uow.connection  # type: ignore[attr-defined]
        tables: list[Any] = [m.__table__ for m in (DecisionRow, TradeRow, PortfolioRow, PositionRow, EquitySnapshotRow)]
        return [[tuple(r) for r in connection.execute(select(t).order_by(*t.primary_key))] for t in tables]


def _last_decision(container: Container, agent_id: int) -> int:
    with container.uow_factory() as uow:
        statement = select(func.max(DecisionRow.id)).where(DecisionRow.agent_id == agent_id)
        decision_id: int = uow.connection.execute(statement).scalar_one()  # type: ignore[attr-defined]
    return decision_id


def test_an_llm_decision_replays_on_the_same_request_and_another_model_differs(
    tmp_path: Path, standin: StandInServer
) -> None:
    standin.always(MODEL, decision_reply(BUY))
    container, llm = _race(tmp_path / "race.db", standin)
    try:
        decision_id = _last_decision(container, llm)
        recorded = [r["json"] for r in standin.requests if r["json"]["model"] == MODEL]
        assert len(recorded) == 2  # one per cycle
        before = _state(container)

        same = asyncio.run(container.replay_decision(decision_id))

        assert same.identical
        assert same.prompt_identical is True
        assert same.same_model
        assert same.counterfactual.orders == same.original.orders
        assert same.counterfactual.orders[0]["notional_usd"] == "1000"
        assert same.counterfactual.fills == same.original.fills  # on the portfolio it saw (it bought an hour ago)
        assert same.original_model["client"]["prompt_version"] == 1
        assert same.original_model["client"]["temperature"] == 0.3
        assert "Authorization" not in json.dumps(same.original_model)
        replayed = standin.requests[-1]["json"]
        assert replayed == recorded[-1]  # byte for byte the request the model answered in the race

        standin.always(OTHER, decision_reply(SELL_NOTHING, model=OTHER))
        other = asyncio.run(container.replay_decision(decision_id, provider="llama", model=OTHER))

        assert not other.identical
        assert other.prompt_identical is True  # the same context, so the same prompt, to another model
        assert standin.requests[-1]["json"]["messages"] == recorded[-1]["messages"]
        assert standin.requests[-1]["json"]["model"] == OTHER
        assert other.counterfactual.orders == [{"symbol": "ETH", "side": "SELL", "quantity": "1", "notional_usd": None}]
        assert [r["reason"] for r in other.counterfactual.rejections] == ["insufficient_position"]
        assert other.counterfactual.fills == []
        assert other.replay_model["client"]["model"] == OTHER

        standin.always(MODEL, server_error(503))
        failing = asyncio.run(container.replay_decision(decision_id))
        assert failing.counterfactual.hold_reason is not None
        assert failing.counterfactual.hold_reason.startswith("provider error")
        assert not failing.identical

        assert _state(container) == before
    finally:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]


def test_changed_model_settings_are_noted(tmp_path: Path, standin: StandInServer) -> None:
    standin.always(MODEL, decision_reply(BUY))
    container, llm = _race(tmp_path / "race.db", standin)
    try:
        decision_id = _last_decision(container, llm)
        hotter = container.settings.llama.model_copy(update={"temperature": 0.9})
        container.settings = container.settings.model_copy(update={"llama": hotter})

        result = asyncio.run(container.replay_decision(decision_id))

        assert result.identical  # the stand-in answers the same whatever the temperature
        assert not result.same_model
        assert result.notes == (
            "the model settings differ from the original's (client.temperature): the race's configuration changed",
        )
        assert standin.requests[-1]["json"]["temperature"] == 0.9
    finally:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
