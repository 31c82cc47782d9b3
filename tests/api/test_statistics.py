"""The statistics on the API: headline figures on the leaderboard, everything on /stats, each field defined,
read from the stored set (never computed on a request), and a race version that moves when a set lands."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.domain.model import Agent
from shared.services.statistics_ports import StoredStatistics
from tests.api.conftest import FakeContainer, _summary, assert_error
from tests.statistics_fakes import FakeStatisticsRepository, sample_statistics

pytestmark = pytest.mark.anyio

BUY_AND_HOLD = Agent(4, "Buy & Hold BTC", "baseline", "buy_and_hold", params={"symbol": "BTC"})


def with_buy_and_hold(container: FakeContainer) -> None:
    """Adds a buy-and-hold BTC control (agent 4) that every other agent is compared with."""
    summary = _summary(1, "101000.00000000", "0.5", 1, "100")
    container.queries.summaries[4] = replace(summary, agent=BUY_AND_HOLD)
    stored = container.statistics.stored if container.statistics else None
    assert stored is not None
    controls = {3: "random", 4: "Buy & Hold BTC"}
    by_agent = {a: sample_statistics(a, controls=controls) for a in (1, 2)}
    by_agent[4] = sample_statistics(4, controls={3: "random"})
    container.statistics = FakeStatisticsRepository(stored=replace(stored, by_agent=by_agent))


async def test_the_stats_route_serves_every_figure_of_the_stored_set(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.get("/api/agents/1/stats")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["agent_id"], body["name"]) == (1, "momentum")
    assert body["status"] == {
        "computed_for": "2024-03-02T23:00:00Z",
        "computed_at": "2024-03-02T23:00:02Z",
        "note": None,
        "definitions": "docs/statistics.md",
    }
    stats = body["statistics"]
    assert (stats["sharpe"], stats["sortino"], stats["max_drawdown"]) == (1.8712, 2.6034, 0.1568)
    assert stats["max_drawdown_duration"] == 113 * 3600  # seconds
    assert (stats["observations"], stats["returns"]) == (504, 503)
    assert stats["trades"]["average_loss"] == "-553.12500000"  # money stays an exact string
    assert stats["trades"]["average_holding"] == 30.5 * 3600
    assert stats["cost"] == {
        "inference_cost_usd": "1.23450000",
        "cost_per_decision": "0.00244940",
        "gross_total_return": 0.0525,
        "net_total_return": 0.05248765,
        "usd_per_return_point": "0.23514286",
    }
    assert stats["discipline"]["hold_shares"] == {"timeout": 0.004, "invalid_output": 0.0119}
    assert [b["count"] for b in stats["calibration"]["bins"]] == [70, 50]
    [random] = stats["versus_controls"]
    assert random == {
        "control_agent_id": 3,
        "control_name": "random",
        "value": 0.0425,
        "low": -0.0123,
        "high": 0.0931,
        "probability_beats": 0.87,
        "significant": False,
        "paired_returns": 503,
        "block_length": 8,
    }
    assert container.statistics is not None
    assert "race_history" not in container.statistics.calls  # read, never computed on the request


async def test_an_agent_without_figures_yet_gets_nulls_and_the_reason(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/agents/3/stats")).json()

    assert body["statistics"] is None
    assert (
        body["status"]["note"]
        == "No statistics for this agent yet: it had no equity mark by 2024-03-02T23:00:00+00:00."
    )


@pytest.mark.parametrize(
    ("statistics", "note"),
    [
        (None, "This deployment does not compute statistics."),
        (FakeStatisticsRepository(), "No statistics yet: they are computed once the first cycle's equity marks land."),
    ],
)
async def test_without_a_stored_set_every_figure_is_null_with_a_note(
    client: httpx.AsyncClient, container: FakeContainer, statistics: FakeStatisticsRepository | None, note: str
) -> None:
    container.statistics = statistics

    stats = (await client.get("/api/agents/1/stats")).json()
    board = (await client.get("/api/leaderboard")).json()

    assert stats["statistics"] is None
    assert stats["status"] == {
        "computed_for": None,
        "computed_at": None,
        "note": note,
        "definitions": "docs/statistics.md",
    }
    assert board["statistics"]["note"] == note
    headline = ("sharpe", "max_drawdown", "win_rate", "net_return", "excess_over_buy_and_hold")
    assert all(entry[field] is None for entry in board["items"] for field in headline)


@pytest.mark.parametrize("agent_id", ["0", "-1", "abc", str(2**31), "1.5"])
async def test_a_bad_agent_id_is_422(client: httpx.AsyncClient, agent_id: str) -> None:
    assert_error(await client.get(f"/api/agents/{agent_id}/stats"), 422, "validation_error", mentions="agent_id")


async def test_an_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/agents/99/stats"), 404, "not_found", mentions="agent 99")


async def test_the_leaderboard_flags_whether_each_lead_over_buy_and_hold_is_significant(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    with_buy_and_hold(container)
    assert container.statistics is not None
    assert container.statistics.stored is not None
    by_agent = dict(container.statistics.stored.by_agent)
    [versus_random, versus_buy_and_hold] = by_agent[2].versus_controls
    by_agent[2] = replace(
        by_agent[2], versus_controls=(versus_random, replace(versus_buy_and_hold, low=0.01, significant=True))
    )
    container.statistics.stored = replace(container.statistics.stored, by_agent=by_agent)

    body = (await client.get("/api/leaderboard")).json()

    entries = {e["agent_id"]: e for e in body["items"]}
    assert entries[1]["excess_over_buy_and_hold"] == {
        "control_agent_id": 4,
        "control_name": "Buy & Hold BTC",
        "value": pytest.approx(0.0325),  # the second control by id: the fakes' figures step per control
        "low": pytest.approx(-0.0113),
        "high": 0.0931,
        "probability_beats": 0.87,
        "significant": False,
    }
    assert entries[2]["excess_over_buy_and_hold"]["significant"] is True
    assert entries[4]["excess_over_buy_and_hold"] is None  # the control itself
    assert entries[4]["sharpe"] == 1.8712
    assert (entries[3]["sharpe"], entries[3]["excess_over_buy_and_hold"]) == (None, None)  # not measured yet
    assert body["statistics"]["computed_for"] == "2024-03-02T23:00:00Z"


async def test_the_race_version_and_the_leaderboard_etag_move_when_a_new_set_lands(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    race, board = await client.get("/api/race"), await client.get("/api/leaderboard")
    assert container.statistics is not None
    assert container.statistics.stored is not None
    stored = container.statistics.stored
    unchanged = await client.get("/api/race", headers={"if-none-match": race.headers["etag"]})
    assert unchanged.status_code == 304

    # The same cycle (the cycle count does not move): only the statistics landed.
    new_figures = {a: replace(s, sharpe=0.5) for a, s in stored.by_agent.items()}
    container.statistics.stored = StoredStatistics(
        stored.computed_for, stored.computed_at + timedelta(seconds=30), new_figures
    )
    race_after = await client.get("/api/race", headers={"if-none-match": race.headers["etag"]})
    board_after = await client.get("/api/leaderboard", headers={"if-none-match": board.headers["etag"]})

    assert race_after.status_code == 200
    assert race_after.json()["version"] != race.json()["version"]
    assert race_after.json()["cycles"] == race.json()["cycles"]
    assert board_after.status_code == 200
    assert board_after.json()["items"][0]["sharpe"] == 0.5


def _fields(document: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = document["components"]["schemas"][name]["properties"]
    return properties


async def test_every_statistic_is_defined_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()
    schemas = [
        "AgentStatisticsPublic",
        "TradeStatsPublic",
        "CostStatsPublic",
        "DisciplineStatsPublic",
        "CalibrationStatsPublic",
        "ReliabilityBinPublic",
        "ControlComparisonPublic",
        "ExcessReturnPublic",
        "StatisticsStatusPublic",
        "AgentStatsPublic",
    ]
    undefined = [
        f"{schema}.{field}"
        for schema in schemas
        for field, spec in _fields(document, schema).items()
        if not spec.get("description") and "$ref" not in spec
    ]
    assert undefined == []
    entry = _fields(document, "LeaderboardEntryPublic")
    for field in ("sharpe", "max_drawdown", "win_rate", "net_return", "excess_over_buy_and_hold"):
        assert entry[field].get("description"), field
    assert "sqrt(cycles per year)" in _fields(document, "AgentStatisticsPublic")["sharpe"]["description"]
    assert "/api/agents/{agent_id}/stats" in document["paths"]
