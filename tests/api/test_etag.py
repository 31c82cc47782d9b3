"""Conditional GETs: the dashboard polls every few seconds and an unchanged answer must cost a bodiless 304."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from shared.api.etag import entity_tag, etag_matches
from tests.api.conftest import ADMIN_KEY, DASHBOARD_ORIGIN, FakeContainer, client_for, make_settings

pytestmark = pytest.mark.anyio


async def test_get_carries_an_etag_and_a_matching_if_none_match_gets_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/leaderboard")
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    assert first.headers["cache-control"] == "no-cache"
    assert tag == entity_tag(first.content)

    again = await client.get("/api/leaderboard", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag

    other = await client.get("/api/leaderboard", headers={"If-None-Match": 'W/"stale"'})
    assert other.status_code == 200
    assert other.content == first.content


async def test_a_change_changes_the_etag(client: httpx.AsyncClient, container: FakeContainer) -> None:
    before = await client.get("/api/agents")
    container.queries.summaries.pop(next(iter(container.queries.summaries)))
    after = await client.get("/api/agents", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]


async def test_errors_and_posts_are_not_tagged(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/agents/999")
    assert missing.status_code == 404
    assert "etag" not in missing.headers
    post = await client.post("/api/admin/jobs/equity-snapshot", headers={"x-admin-key": ADMIN_KEY})
    assert "etag" not in post.headers


async def test_cross_origin_304_keeps_cors_headers(container: FakeContainer, app: FastAPI) -> None:
    async with client_for(app) as client:
        first = await client.get("/api/leaderboard", headers={"Origin": DASHBOARD_ORIGIN})
        again = await client.get(
            "/api/leaderboard", headers={"Origin": DASHBOARD_ORIGIN, "If-None-Match": first.headers["etag"]}
        )
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), ('W/"abc"', True), ('"abc"', True), ('W/"x", W/"abc"', True), ("*", True), ('W/"abcd"', False)],
)
def test_weak_comparison(header: str | None, matches: bool) -> None:
    assert etag_matches(header, 'W/"abc"') is matches


def test_settings_fixture_allows_the_dashboard_origin() -> None:
    assert DASHBOARD_ORIGIN in make_settings().api.cors_origin_list
