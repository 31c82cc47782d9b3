"""The API's contract at its edges: what used to be a 500 or an answer the OpenAPI document did not promise."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import assert_error

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("route", ["decisions", "trades"])
async def test_an_offset_beyond_sql_integers_is_422(client: httpx.AsyncClient, route: str) -> None:
    response = await client.get(f"/api/agents/1/{route}", params={"offset": str(2**63)})

    assert_error(response, 422, "validation_error", mentions="offset")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/agents/1/equity", {"start": "0001-01-01T00:00:00+14:00"}),
        ("/api/agents/1/equity", {"end": "9999-12-31T23:59:59-14:00"}),
        ("/api/market/BTC/candles", {"start": "0001-01-01T00:00:00+14:00"}),
    ],
)
async def test_a_time_out_of_range_in_utc_is_422(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> None:
    assert_error(await client.get(url, params=params), 422, "validation_error", mentions="out of range")


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1"])
async def test_numbers_are_not_times(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/api/agents/1/equity", params={"start": value})

    assert_error(response, 422, "validation_error", mentions="ISO 8601")


async def test_a_time_out_of_range_in_an_admin_body_is_422(client: httpx.AsyncClient) -> None:
    from tests.api.conftest import ADMIN_KEY

    response = await client.post(
        "/api/admin/jobs/market-data", json={"at": "0001-01-01T00:00:00+14:00"}, headers={"x-admin-key": ADMIN_KEY}
    )

    assert_error(response, 422, "validation_error", mentions="out of range")
