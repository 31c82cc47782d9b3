"""The LLM agents in the race itself: seeded from settings, built by the registry, deciding in the local
race's cycles, their usage totals served by the API, and their connection pools closed after every job (each
Functions timer runs on a new event loop)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from shared.adapters.agents.factory import AgentClientRegistry
from shared.api.app import create_app
from shared.bootstrap import Container, set_container
from shared.config import ConnectionStrings, LlamaSettings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, prepare, run_simulated_cycles
from tests.llm.standin import StandInServer, decision_reply

START = datetime(2024, 3, 10, tzinfo=UTC)
MODEL = "llama-3.3-70b-versatile"
DECISION = json.dumps(
    {"orders": [{"symbol": "BTC", "side": "BUY", "notional_usd": 1000}], "reasoning": "trend", "confidence": 0.6}
)


def _settings(db: Path, standin: StandInServer) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
        Llama=LlamaSettings(
            Provider="openai_compatible",
            BaseUrl=standin.base_url,
            Model=MODEL,
            PromptPricePerMTok=Decimal("0.59"),
            CompletionPricePerMTok=Decimal("0.79"),
        ),
    )


async def _get(container: Container, path: str) -> dict[str, object]:
    transport = httpx.ASGITransport(app=create_app(lambda: container))
    async with httpx.AsyncClient(transport=transport, base_url="http://race") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_configured_llm_agent_races_and_the_api_serves_its_usage(
    tmp_path: Path, standin: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.always(MODEL, decision_reply(DECISION))
    container = prepare(_settings(tmp_path / "race.db", standin))
    try:
        registry = container.agent_clients
        assert isinstance(registry, AgentClientRegistry)
        assert registry.llm_resources is not None
        closed_on: list[asyncio.AbstractEventLoop] = []
        close = registry.aclose

        async def counting_close() -> None:
            closed_on.append(asyncio.get_running_loop())
            await close()

        monkeypatch.setattr(registry, "aclose", counting_close)
        with container.uow_factory() as uow:
            [llm] = [a for a in uow.agents.list(active_only=True) if a.provider == "llama"]
        assert llm.name == f"Llama ({MODEL})"

        options = LocalRaceOptions(seconds_per_cycle=0, max_cycles=2, serve_http=False)
        assert asyncio.run(run_simulated_cycles(container, options, asyncio.Event())) == 2
        # Two jobs on the local race's one loop, then one on a new loop (a Functions timer): closed after each.
        assert container.run_agents_job(START).skipped > 0
        assert len(closed_on) == 3
        pools = list(registry.llm_resources._pools.values())
        assert len(pools) == 1
        assert all(pool._client is None for pool in pools), "a pool left open on a finished event loop"

        decisions = container.queries.decisions(llm.id, limit=10, offset=0).items
        assert [d.status for d in decisions] == ["ok", "ok"], [d.hold_reason for d in decisions]
        assert all(d.prompt_tokens and d.completion_tokens and d.cost_usd for d in decisions)
        total_cost = sum((d.cost_usd or Decimal(0) for d in decisions), Decimal(0))

        board = asyncio.run(_get(container, "/api/leaderboard"))
        items = board["items"]
        assert isinstance(items, list)
        [entry] = [e for e in items if e["agent_id"] == llm.id]
        assert entry["prompt_tokens"] == sum(d.prompt_tokens or 0 for d in decisions)
        assert entry["completion_tokens"] == sum(d.completion_tokens or 0 for d in decisions)
        assert Decimal(entry["llm_cost_usd"]) == total_cost > 0
        assert {e["prompt_tokens"] for e in items if e["provider"] == "baseline"} == {0}
        detail = asyncio.run(_get(container, f"/api/agents/{llm.id}"))
        assert (detail["prompt_tokens"], detail["llm_cost_usd"]) == (entry["prompt_tokens"], entry["llm_cost_usd"])
    finally:
        set_container(None)
