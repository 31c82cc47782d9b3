from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from shared.api.routes.market import CANDLE_INTERVALS
from shared.domain.model import INTERVAL_SECONDS
from tests.api.conftest import FakeContainer, assert_error

pytestmark = pytest.mark.anyio


async def test_latest_prices(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/market/prices")

    assert response.status_code == 200
    assert response.json()["items"] == [
        {"symbol": "BTC", "price": "61005.5", "as_of": "2024-03-02T00:00:00Z"},
        {"symbol": "ETH", "price": "3405.25", "as_of": "2024-03-02T00:00:00Z"},
    ]


async def test_candles_of_a_symbol(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get(
        "/api/market/btc/candles", params={"interval": "1h", "start": "2024-03-01T00:00:00Z", "limit": 5}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["symbol"], body["interval"], len(body["items"])) == ("BTC", "1h", 5)
    assert body["items"][-1] == {
        "open_time": "2024-03-01T23:00:00Z",
        "close_time": "2024-03-02T00:00:00Z",
        "open": "61000.5",
        "high": "61010.5",
        "low": "60990.5",
        "close": "61005.5",
        "volume": "12",
    }
    call = container.queries.calls_to("candles")[0]
    assert call == {
        "symbol": "BTC",
        "interval": "1h",
        "start": datetime(2024, 3, 1, tzinfo=UTC),
        "end": None,
        "limit": 5,
    }


async def test_candles_default_to_hourly_and_the_configured_limit(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.get("/api/market/ETH/candles")

    assert response.status_code == 200
    call = container.queries.calls_to("candles")[0]
    assert (call["interval"], call["limit"]) == ("1h", 100)


async def test_unknown_symbol_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/market/DOGE/candles"), 404, "not_found", mentions="DOGE")


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        ("/api/market/BTC/candles?interval=2h", "query.interval"),
        ("/api/market/BTC/candles?limit=101", "limit: must be at most 100"),
        ("/api/market/BTC/candles?limit=0", "query.limit"),
        ("/api/market/BTC/candles?start=2024-03-02T00:00:00Z&end=2024-03-01T00:00:00Z", "start"),
        ("/api/market/BTC/candles?end=not-a-time", "query.end"),
        ("/api/market/B-T-C/candles", "path.symbol"),
    ],
)
async def test_bad_candle_query_is_422(client: httpx.AsyncClient, path: str, mentions: str) -> None:
    assert_error(await client.get(path), 422, "validation_error", mentions=mentions)


def test_the_interval_choices_are_the_domain_intervals() -> None:
    assert set(CANDLE_INTERVALS) == set(INTERVAL_SECONDS)
