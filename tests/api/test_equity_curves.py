"""GET /api/equity: every agent's curve in one answer, as each agent's own /equity would give it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from tests.api.conftest import FakeContainer, assert_error

pytestmark = pytest.mark.anyio


async def test_every_agent_gets_its_curve_by_id_the_same_as_its_own_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/equity")

    assert response.status_code == 200
    body = response.json()
    assert body["max_points"] == 24
    assert [c["agent_id"] for c in body["curves"]] == sorted(c["agent_id"] for c in body["curves"])
    assert len(body["curves"]) >= 2
    for curve in body["curves"]:
        own = (await client.get(f"/api/agents/{curve['agent_id']}/equity")).json()
        assert curve["at"] == [p["at"] for p in own["points"]]
        assert curve["equity"] == [p["equity"] for p in own["points"]]  # the exact decimal strings
        assert set(curve) == {"agent_id", "at", "equity"}
    assert any(c["at"] for c in body["curves"])
    assert any(not c["at"] for c in body["curves"])  # an agent with no mark yet: an empty curve


async def test_the_range_and_point_budget_reach_every_curve(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.get(
        "/api/equity", params={"start": "2024-03-01T02:00:00+02:00", "end": "2024-03-01T10:00:00Z", "max_points": 3}
    )

    assert response.status_code == 200
    assert all(len(c["at"]) == len(c["equity"]) <= 3 for c in response.json()["curves"])
    calls = container.queries.calls_to("equity_series")
    assert len(calls) == len(response.json()["curves"])
    assert {(c["start"], c["end"], c["max_points"]) for c in calls} == {
        (datetime(2024, 3, 1, 0, tzinfo=UTC), datetime(2024, 3, 1, 10, tzinfo=UTC), 3)
    }


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"max_points": 25}, "at most 24"),
        ({"max_points": 1}, ""),
        ({"start": "2024-03-02T00:00:00Z", "end": "2024-03-01T00:00:00Z"}, "start"),
        ({"start": "2024-03-01T00:00:00"}, ""),  # no offset
        ({"start": "yesterday"}, ""),
    ],
)
async def test_bad_ranges_and_budgets_are_a_422(
    client: httpx.AsyncClient, params: dict[str, str | int], mentions: str
) -> None:
    assert_error(await client.get("/api/equity", params=params), 422, "validation_error", mentions=mentions)


async def test_the_answer_is_kept_until_the_race_version_moves(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    first = await client.get("/api/equity")
    read = len(container.queries.calls_to("equity_series"))
    again = await client.get("/api/equity")
    assert again.json() == first.json()
    assert len(container.queries.calls_to("equity_series")) == read  # served from the kept answer

    status = container.queries.status
    container.queries.status = replace(status, last_mark_at=status.last_cycle)  # a mark lands
    moved = await client.get("/api/equity")
    assert moved.status_code == 200
    assert len(container.queries.calls_to("equity_series")) == 2 * read  # read again, for the new version
    other_range = await client.get("/api/equity", params={"max_points": 3})
    assert other_range.json()["max_points"] == 3  # a range or budget of its own, never another's answer
