from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import httpx
import pytest

from tests.api.conftest import T0, FakeContainer, assert_error

pytestmark = pytest.mark.anyio


async def test_list_agents_returns_every_agent_with_money_as_strings(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/agents")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    first = body["items"][0]
    assert first["id"] == 1
    assert first["name"] == "momentum"
    assert first["equity"] == "104250.12345678"
    assert first["fees_paid"] == "37.51000000"
    assert first["positions"] == {"BTC": "0.25000000"}
    assert first["equity_at"] == "2024-03-02T23:00:00Z"
    assert "params" not in first
    inactive = body["items"][2]
    assert inactive["active"] is False
    assert inactive["inactive_reason"] == "retired after 3 failures"
    assert inactive["equity"] is None


async def test_get_agent(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/agents/2")

    assert response.status_code == 200
    assert response.json()["provider"] == "llama"
    usage = {k: response.json()[k] for k in ("prompt_tokens", "completion_tokens", "llm_cost_usd")}
    assert usage == {"prompt_tokens": 58_560, "completion_tokens": 7_200, "llm_cost_usd": "0.04024800"}
    assert container.queries.calls_to("agent_summary") == [{"agent_id": 2, "starting_cash": 100000}]


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "0", "-3", "99999999999999999999"])
async def test_malformed_agent_id_is_422(client: httpx.AsyncClient, bad_id: str) -> None:
    for suffix in ("", "/equity", "/trades", "/decisions"):
        assert_error(await client.get(f"/api/agents/{bad_id}{suffix}"), 422, "validation_error", mentions="agent_id")


@pytest.mark.parametrize("suffix", ["", "/equity", "/trades", "/decisions"])
async def test_unknown_agent_is_404(client: httpx.AsyncClient, suffix: str) -> None:
    assert_error(await client.get(f"/api/agents/42{suffix}"), 404, "not_found", mentions="agent 42 not found")


async def test_equity_series_defaults_to_the_configured_maximum_points(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.get("/api/agents/1/equity")

    assert response.status_code == 200
    body = response.json()
    assert body["max_points"] == 24
    assert 0 < len(body["points"]) <= 24
    assert body["points"][0] == {
        "at": "2024-03-01T00:00:00Z",
        "equity": "100000",
        "cash": "84250.12345678",
        "drawdown_pct": "0",
    }
    assert container.queries.calls_to("equity_series")[0]["max_points"] == 24


async def test_equity_series_passes_a_utc_range_and_point_budget(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.get(
        "/api/agents/1/equity",
        params={"start": "2024-03-01T02:00:00+02:00", "end": "2024-03-01T10:00:00Z", "max_points": 3},
    )

    assert response.status_code == 200
    assert len(response.json()["points"]) <= 3
    call = container.queries.calls_to("equity_series")[0]
    assert call["start"] == datetime(2024, 3, 1, 0, tzinfo=UTC)
    assert call["start"].tzinfo is UTC
    assert call["end"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert call["max_points"] == 3


async def test_an_unencoded_plus_offset_is_understood(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/agents/1/equity?start=2024-03-01T05:00:00+00:00")

    assert response.status_code == 200
    assert container.queries.calls_to("equity_series")[0]["start"] == datetime(2024, 3, 1, 5, tzinfo=UTC)


async def test_known_agent_without_history_is_an_empty_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/agents/3/equity")

    assert response.status_code == 200
    assert response.json()["points"] == []


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"start": "2024-03-02T00:00:00Z", "end": "2024-03-01T00:00:00Z"}, "start: must not be after"),
        ({"start": "yesterday"}, "query.start"),
        ({"end": "2024-13-01T00:00:00Z"}, "query.end"),
        ({"start": "2024-03-01T00:00:00"}, "timezone is required"),
        ({"max_points": 25}, "max_points: must be at most 24"),
        ({"max_points": 1}, "query.max_points"),
        ({"max_points": "many"}, "query.max_points"),
    ],
)
async def test_bad_equity_query_is_422(client: httpx.AsyncClient, params: dict[str, object], mentions: str) -> None:
    assert_error(await client.get("/api/agents/1/equity", params=params), 422, "validation_error", mentions=mentions)


async def test_trades_are_paginated_newest_first(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/agents/1/trades", params={"limit": 5, "offset": 2})

    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (12, 5, 2)
    assert [t["id"] for t in body["items"]] == [109, 108, 107, 106, 105]
    assert body["items"][0]["price"] == "61234.50000000"
    assert body["items"][0]["cycle_time"] == "2024-03-01T09:00:00Z"
    assert container.queries.calls_to("trades") == [{"agent_id": 1, "limit": 5, "offset": 2}]


async def test_trades_default_page(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/agents/1/trades")

    assert response.status_code == 200
    # The default (50) is capped to the configured maximum (20 in these tests).
    assert container.queries.calls_to("trades") == [{"agent_id": 1, "limit": 20, "offset": 0}]


async def test_known_agent_without_trades_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/agents/2/trades")

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_decisions_carry_their_reasoning(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/agents/1/decisions", params={"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 5
    newest = body["items"][0]
    assert newest["cycle_time"] == "2024-03-01T04:00:00Z"
    assert newest["reasoning"] == "momentum is positive over 24h (cycle 4)"
    assert newest["confidence"] == 0.62
    assert newest["orders"] == [{"symbol": "BTC", "side": "BUY", "quantity": "0.01"}]
    assert newest["cost_usd"] == "0.00012000"


@pytest.mark.parametrize("resource", ["trades", "decisions"])
@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"limit": 21}, "limit: must be at most 20"),
        ({"limit": 0}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
async def test_bad_page_is_422(
    client: httpx.AsyncClient, resource: str, params: dict[str, object], mentions: str
) -> None:
    response = await client.get(f"/api/agents/1/{resource}", params=params)

    assert_error(response, 422, "validation_error", mentions=mentions)


def test_fixture_times_are_utc() -> None:
    assert T0.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("provider error: 401 {'error': 'invalid key sk-live-LEAKED123'}", "provider_error"),
        ("rate limited", "rate_limited"),
        ("error: RuntimeError: connect to db-secret.internal:5432 failed", "agent_error"),
        ("ML service unavailable: http://ml.internal/predict?key=LEAKED123", "ml_service_error"),
        ("something new LEAKED123", "unavailable"),
    ],
)
async def test_decisions_serve_a_classified_hold_never_the_raw_text(
    client: httpx.AsyncClient, container: FakeContainer, raw: str, code: str
) -> None:
    rows = container.queries.decisions_by_agent[1]
    rows[0] = dataclasses.replace(rows[0], status="hold_fallback", hold_reason=raw, reasoning=f"HOLD: {raw}")

    response = await client.get("/api/agents/1/decisions")

    assert response.status_code == 200
    assert "LEAKED123" not in response.text
    assert "internal" not in response.text
    first = response.json()["items"][0]
    assert first["hold_code"] == code
    assert first["reasoning"] == f"HOLD: {first['hold_reason']}"
    assert response.json()["items"][1]["hold_code"] is None
