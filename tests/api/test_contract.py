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


async def test_the_document_states_the_configured_caps_and_interval(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()

    def query(path: str, name: str) -> dict[str, object]:
        parameters = document["paths"][path]["get"]["parameters"]
        schema: dict[str, object] = next(p for p in parameters if p["name"] == name)["schema"]
        return schema

    def maximum(path: str, name: str) -> object:
        branches = query(path, name).get("anyOf", [query(path, name)])
        return next(b["maximum"] for b in branches if b.get("type") == "integer")  # type: ignore[union-attr]

    assert maximum("/api/agents/{agent_id}/decisions", "limit") == 20  # conftest's MaxPageSize
    assert maximum("/api/agents/{agent_id}/equity", "max_points") == 24
    assert maximum("/api/market/{symbol}/candles", "limit") == 100
    assert query("/api/market/{symbol}/candles", "interval")["enum"] == ["1h"]
    assert "x-setting" not in str(document)


@pytest.mark.parametrize("interval", ["30m", "4h", "1d"])
async def test_an_interval_that_is_not_stored_is_422(client: httpx.AsyncClient, interval: str) -> None:
    response = await client.get("/api/market/BTC/candles", params={"interval": interval})

    assert_error(response, 422, "validation_error", mentions="only 1h candles are stored")


@pytest.mark.parametrize("body", [b"{not json", b'{"at": 1}', b"[]"])
async def test_no_admin_key_is_401_whatever_the_body(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/api/admin/jobs/run-agents", content=body, headers={"content-type": "application/json"}
    )

    assert_error(response, 401, "unauthorized")


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    get, head = await client.get("/api/leaderboard"), await client.head("/api/leaderboard")

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_the_trailing_slash_redirect_is_relative(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/leaderboard/", params={"a": "1"}, headers={"host": "evil.example"})

    assert response.status_code == 307
    assert response.headers["location"] == "/api/leaderboard?a=1"


async def test_every_operation_documents_its_errors_with_the_error_body(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {"500"} <= statuses, (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/api/health":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (method, path, status)
