"""The rendered-response cache on the real app with fake queries and a data version the test moves by hand:
one render per (path, query, version), never an error stored, never more than its bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.api.app import create_app
from shared.api.response_cache import RenderedResponse, RenderedResponseCache, RenderedResponses, cache_key
from tests.api.conftest import DASHBOARD_ORIGIN, FakeContainer, FakeRaceQueries, client_for, make_settings

pytestmark = pytest.mark.anyio


@dataclass
class HandMovedVersion:
    """The data version, moved by the test (the real one moves when the database commits)."""

    value: int = 0
    broken: bool = False
    reads: int = 0

    def fresh(self) -> str | None:
        return None  # always read through `current`, so `broken` takes effect at once

    def current(self) -> str:
        self.reads += 1
        if self.broken:
            raise ConnectionError("database unreachable")
        return f"v{self.value}"


@dataclass
class CachedContainer(FakeContainer):
    data_version: Any = None


class SlowQueries(FakeRaceQueries):
    """Takes a while to answer the leaderboard, so concurrent requests overlap its render."""

    def agent_summaries(self, *, starting_cash: Decimal) -> list[Any]:
        time.sleep(0.2)
        return super().agent_summaries(starting_cash=starting_cash)


@pytest.fixture
def version() -> HandMovedVersion:
    return HandMovedVersion()


@pytest.fixture
def cached(version: HandMovedVersion) -> CachedContainer:
    return CachedContainer(settings=make_settings(ResponseCacheMegabytes=1), data_version=version)


@pytest.fixture
def cached_app(cached: CachedContainer) -> FastAPI:
    return create_app(lambda: cached)  # type: ignore[arg-type, return-value]


@pytest.fixture
async def client(cached_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(cached_app) as client:
        yield client


def response_cache(app: FastAPI) -> RenderedResponseCache:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, RenderedResponseCache):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, RenderedResponseCache), "the app has no rendered-response cache"
    return layer


async def test_a_get_is_rendered_once_per_data_version(
    client: httpx.AsyncClient, cached: CachedContainer, version: HandMovedVersion
) -> None:
    first = await client.get("/api/leaderboard")
    second = await client.get("/api/leaderboard")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"] == "application/json"
    assert len(cached.queries.calls_to("agent_summaries")) == 1

    # A write (a cycle, an equity mark, a statistics row) moves the version: the next answer shows it.
    cached.queries.summaries[1] = dataclasses.replace(cached.queries.summaries[1], trades=99)
    stale = await client.get("/api/leaderboard")
    assert stale.content == first.content, "same version: the stored answer"
    version.value += 1
    fresh = await client.get("/api/leaderboard")
    assert fresh.content != first.content
    assert fresh.headers["etag"] != first.headers["etag"]
    assert len(cached.queries.calls_to("agent_summaries")) == 2


async def test_if_none_match_gets_a_304_from_the_stored_answer(
    client: httpx.AsyncClient, cached: CachedContainer
) -> None:
    first = await client.get("/api/agents")
    tag = first.headers["etag"]
    again = await client.get("/api/agents", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert "content-length" not in again.headers
    other = await client.get("/api/agents", headers={"If-None-Match": 'W/"someone-else"'})
    assert (other.status_code, other.content) == (200, first.content)
    # The first request to a key may carry If-None-Match too: the full answer is rendered and stored.
    fresh_key = await client.get("/api/agents/1", headers={"If-None-Match": 'W/"old"'})
    assert fresh_key.status_code == 200
    assert (await client.get("/api/agents/1")).content == fresh_key.content
    assert len(cached.queries.calls_to("agent_summaries")) == 1
    assert len(cached.queries.calls_to("agent_summary")) == 1


async def test_different_queries_do_not_collide_and_the_same_query_in_another_order_does(
    client: httpx.AsyncClient, cached: CachedContainer
) -> None:
    one = await client.get("/api/agents/1/trades?limit=1&offset=0")
    two = await client.get("/api/agents/1/trades?limit=2&offset=0")
    assert len(one.json()["items"]) == 1
    assert len(two.json()["items"]) == 2
    shifted = await client.get("/api/agents/1/trades?limit=1&offset=1")
    assert shifted.json()["items"] != one.json()["items"]
    reordered = await client.get("/api/agents/1/trades?offset=0&limit=1")
    assert reordered.content == one.content
    assert len(cached.queries.calls_to("trades")) == 3
    other_agent = await client.get("/api/agents/2/trades?limit=1&offset=0")
    assert other_agent.json()["items"] == []


def test_the_key_normalizes_order_and_encoding_but_keeps_repeated_values_in_order() -> None:
    def key(query: bytes) -> str:
        return cache_key({"path": "/api/x", "query_string": query})

    assert key(b"b=2&a=1") == key(b"a=1&b=2") == "/api/x?a=1&b=2"
    assert key(b"a=%41") == key(b"a=A")
    assert key(b"a=1&a=2") != key(b"a=2&a=1")
    assert key(b"") == "/api/x"
    assert key(b"a=") != key(b"")
    assert key(b"a=1%262") != key(b"a=1&2")


async def test_errors_are_never_stored(client: httpx.AsyncClient, cached: CachedContainer) -> None:
    for _ in range(2):
        missing = await client.get("/api/agents/999")
        assert missing.status_code == 404
        invalid = await client.get("/api/agents/1/trades?limit=0")
        assert invalid.status_code == 422
    assert len(cached.queries.calls_to("agent_summary")) == 2
    store = response_cache_store(client)
    assert len(store) == 0


def response_cache_store(client: httpx.AsyncClient) -> RenderedResponses:
    transport: Any = client._transport
    store = response_cache(transport.app).store
    assert store is not None
    return store


async def test_a_server_error_reaches_the_client_and_is_not_stored(cached: CachedContainer) -> None:
    def broken(**_: Any) -> Any:
        raise RuntimeError("boom")

    cached.queries.agent_summaries = broken  # type: ignore[method-assign]
    app = create_app(lambda: cached)  # type: ignore[arg-type, return-value]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.get("/api/leaderboard")
        again = await client.get("/api/leaderboard")
    assert failed.status_code == again.status_code == 500
    assert "x-request-id" in failed.headers
    assert failed.headers["x-request-id"] != again.headers["x-request-id"], "each error is its own answer"
    store = response_cache(app).store
    assert store is not None
    assert len(store) == 0


async def test_health_is_not_stored(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/health")).status_code == 200
    assert (await client.get("/api/leaderboard")).status_code == 200
    assert len(response_cache_store(client)) == 1, "the leaderboard only"


async def test_concurrent_misses_share_one_render(version: HandMovedVersion) -> None:
    container = CachedContainer(
        settings=make_settings(ResponseCacheMegabytes=1), queries=SlowQueries(), data_version=version
    )
    app = create_app(lambda: container)  # type: ignore[arg-type, return-value]
    async with client_for(app) as client:
        answers = await asyncio.gather(*(client.get("/api/leaderboard") for _ in range(8)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert len(container.queries.calls_to("agent_summaries")) == 1


async def test_an_unreadable_data_version_serves_uncached(
    client: httpx.AsyncClient, cached: CachedContainer, version: HandMovedVersion
) -> None:
    version.broken = True
    for _ in range(2):
        assert (await client.get("/api/leaderboard")).status_code == 200
    assert len(cached.queries.calls_to("agent_summaries")) == 2
    version.broken = False
    await client.get("/api/leaderboard")
    await client.get("/api/leaderboard")
    assert len(cached.queries.calls_to("agent_summaries")) == 3


async def test_head_and_cross_origin_answers_come_from_the_store_with_their_own_headers(
    client: httpx.AsyncClient, cached: CachedContainer
) -> None:
    get = await client.get("/api/leaderboard")
    head = await client.head("/api/leaderboard")
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", get.headers["etag"])
    cross = await client.get("/api/leaderboard", headers={"Origin": DASHBOARD_ORIGIN})
    assert cross.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN
    plain = await client.get("/api/leaderboard")
    assert "access-control-allow-origin" not in plain.headers
    assert len(cached.queries.calls_to("agent_summaries")) == 1


async def test_without_a_data_version_or_with_zero_megabytes_nothing_is_cached() -> None:
    for container in (
        CachedContainer(settings=make_settings(), data_version=None),
        CachedContainer(settings=make_settings(ResponseCacheMegabytes=0), data_version=HandMovedVersion()),
    ):
        app = create_app(lambda container=container: container)  # type: ignore[misc]
        async with client_for(app) as client:
            await client.get("/api/leaderboard")
            await client.get("/api/leaderboard")
        assert len(container.queries.calls_to("agent_summaries")) == 2


def entry(body_bytes: int) -> RenderedResponse:
    return RenderedResponse([(b"content-type", b"application/json")], b"x" * body_bytes, 'W/"t"')


def test_the_store_stays_within_its_bytes_dropping_the_least_recently_used() -> None:
    store = RenderedResponses(max_bytes=8_000)
    for index in range(100):
        assert store.put("v1", f"/api/k{index}", entry(500))
        assert store.bytes <= store.max_bytes
    assert store.get("v1", "/api/k0") is None, "the oldest went first"
    assert store.get("v1", "/api/k99") is not None
    kept = len(store)
    assert 0 < kept < 100
    store.get("v1", f"/api/k{100 - kept}")  # touched: now the most recent
    store.put("v1", "/api/new", entry(500))
    assert store.get("v1", f"/api/k{100 - kept}") is not None
    assert store.get("v1", f"/api/k{101 - kept}") is None


def test_the_store_holds_one_version_and_refuses_an_entry_too_big_for_it() -> None:
    store = RenderedResponses(max_bytes=8_000)
    store.put("v1", "/api/a", entry(100))
    assert store.get("v2", "/api/a") is None
    store.put("v2", "/api/b", entry(100))
    assert len(store) == 1, "the older version's answers are dropped when the version moves"
    assert store.get("v1", "/api/a") is None
    assert not store.put("v2", "/api/huge", entry(2_000)), "more than an eighth of the cache"
    assert store.get("v2", "/api/huge") is None
    assert store.bytes == entry(100).size


async def test_a_long_poll_is_never_answered_from_the_store(client: httpx.AsyncClient) -> None:
    current = (await client.get("/api/race")).json()["version"]
    held = []
    for _ in range(2):  # a stored answer would let the second poll return at once: a tight loop of polls
        started = time.perf_counter()
        poll = await client.get("/api/race", params={"wait": 1, "since": current})
        held.append(time.perf_counter() - started)
        assert poll.status_code == 200
        assert poll.json()["version"] == current
    assert min(held) >= 0.9, held
    assert len(response_cache_store(client)) == 1, "the plain /api/race only"
