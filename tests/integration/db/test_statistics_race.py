"""The statistics in a real race (SQLite and PostgreSQL, the bundled 2024 candles, the seeded baselines):
computed after each cycle's marks, once at the end of a backtest, and served by the API from the stored set."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from shared.adapters.db.models import AgentStatisticsRow
from shared.api.app import create_app
from shared.bootstrap import Container
from tests.integration.db.conftest import RACE_START

START = RACE_START  # the replay start of `new_race` (conftest)
HOUR = timedelta(hours=1)
CYCLES = 30
CONTROLS = {"Buy & Hold BTC", "Equal-Weight Buy & Hold", "Always Hold", "Random Trader"}


def run_timer_jobs(container: Container, first: datetime, cycles: int) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []

    async def run() -> None:
        for at in (first + i * HOUR for i in range(cycles)):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            reports.append(container.run_equity_job(at).as_dict())

    asyncio.run(run())
    return reports


def payloads(container: Container) -> dict[int, Any]:
    with container.uow_factory() as uow:
        statement = select(AgentStatisticsRow.agent_id, AgentStatisticsRow.payload)
        rows = uow.connection.execute(statement).all()  # type: ignore[attr-defined]
    return {agent_id: payload for agent_id, payload in rows}


def test_each_equity_job_refreshes_the_statistics_and_the_api_serves_them(new_race: Callable[[], Container]) -> None:
    container = new_race()

    reports = run_timer_jobs(container, START, CYCLES)

    assert [r["statistics"]["computed_for"] for r in reports] == [(START + i * HOUR).isoformat() for i in range(CYCLES)]
    assert container.statistics is not None
    roster = container.statistics.race_history().agents
    # Every agent: the six baselines, and the ML and LLM agents, inactive here but marked like every portfolio.
    assert len(roster) > 6
    assert all(r["statistics"]["computed"] == len(roster) and r["statistics"]["skipped"] is None for r in reports)
    assert {a.name for a in roster if a.id in reports[-1]["statistics"]["controls"]} == CONTROLS
    again = container.run_equity_job(START + (CYCLES - 1) * HOUR).as_dict()
    assert again["written"] == 0
    assert again["statistics"]["skipped"] == "already computed for the latest mark"

    stored = container.statistics.latest()
    assert stored is not None
    assert stored.computed_for == START + (CYCLES - 1) * HOUR
    names = {i.agent_id: i.name for i in container.statistics.race_history().inputs}
    for agent_id, figures in stored.by_agent.items():
        assert figures.observations == CYCLES
        compared = {c.control_name for c in figures.versus_controls}
        assert compared == CONTROLS - {names[agent_id]}  # every control but itself

    board, stats = asyncio.run(_read(container, "/api/leaderboard", "/api/agents/1/stats"))
    entries = {e["name"]: e for e in board["items"]}
    assert board["statistics"]["computed_for"] == "2024-03-02T05:00:00Z"
    assert entries["Buy & Hold BTC"]["excess_over_buy_and_hold"] is None
    momentum = entries["Momentum 24h"]["excess_over_buy_and_hold"]
    assert momentum["control_name"] == "Buy & Hold BTC"
    assert momentum["low"] <= momentum["value"] <= momentum["high"]
    assert isinstance(momentum["significant"], bool)
    assert entries["Always Hold"]["sharpe"] is None  # a flat line has no volatility to divide by
    assert entries["Always Hold"]["max_drawdown"] == 0
    assert stats["statistics"]["observations"] == CYCLES


def test_a_backtest_computes_once_at_the_end_the_same_figures_as_the_timer_jobs(
    new_race: Callable[[], Container],
) -> None:
    timed, tested = new_race(), new_race()
    run_timer_jobs(timed, START, CYCLES)
    assert tested.statistics is not None
    saves: list[datetime] = []
    original_save = tested.statistics.save

    def recording_save(**kwargs: Any) -> bool:
        saves.append(kwargs["computed_for"])
        return original_save(**kwargs)

    tested.statistics.save = recording_save  # type: ignore[method-assign]

    asyncio.run(tested.run_backtest(START, START + CYCLES * HOUR, chunk_cycles=8))

    assert saves == [START + (CYCLES - 1) * HOUR]  # four chunks, one computation
    assert payloads(tested) == payloads(timed)  # seeded bootstrap: the same race gives the same intervals


async def _read(container: Container, *paths: str) -> list[Any]:
    app = create_app(lambda: container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        responses = [await client.get(path) for path in paths]
    for response in responses:
        assert response.status_code == 200, response.text
    return [r.json() for r in responses]
