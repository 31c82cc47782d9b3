from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import FakeContainer

pytestmark = pytest.mark.anyio


async def test_leaderboard_ranks_agents_by_equity(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/leaderboard")

    assert response.status_code == 200
    body = response.json()
    assert body["starting_cash"] == "100000"
    assert [(e["rank"], e["agent_id"]) for e in body["items"]] == [(1, 1), (2, 3), (3, 2)]
    leader = body["items"][0]
    assert leader == {
        "rank": 1,
        "agent_id": 1,
        "name": "momentum",
        "provider": "baseline",
        "model": "momentum",
        "active": True,
        "equity": "104250.12345678",
        "equity_at": "2024-03-02T23:00:00Z",
        "return_pct": "4.2501",
        "max_drawdown_pct": "1.2500",
        "trades": 12,
        "fees_paid": "37.51000000",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "llm_cost_usd": "0",
        "sharpe": 1.8712,
        "max_drawdown": 0.1568,
        "win_rate": 0.5714,
        "net_return": 0.05248765,
        "excess_over_buy_and_hold": None,  # this race has no buy-and-hold control
    }
    llm = body["items"][2]
    assert (llm["provider"], llm["prompt_tokens"], llm["completion_tokens"]) == ("llama", 58_560, 7_200)
    assert llm["llm_cost_usd"] == "0.04024800"
    assert container.queries.calls_to("agent_summaries") == [{"starting_cash": 100000}]


@pytest.mark.parametrize("path", ["/api/leaderboard", "/api/agents"])
async def test_an_unchanged_view_is_a_304_to_its_etag(client: httpx.AsyncClient, path: str) -> None:
    first = await client.get(path)
    tag = first.headers["etag"]

    again = await client.get(path, headers={"if-none-match": tag})
    other = await client.get(path, headers={"if-none-match": '"stale"'})

    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    assert other.status_code == 200
    assert other.json() == first.json()
