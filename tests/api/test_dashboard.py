"""The local race serves the built dashboard beside the API: same origin, deep links, /api never shadowed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared.api.dashboard import dashboard_available, with_dashboard

pytestmark = pytest.mark.anyio

INDEX = "<!doctype html><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    # A file named like an API path must not win over the API.
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "leaderboard").write_text("shadow")
    return tmp_path


@pytest.fixture
async def site(app: FastAPI, dist: Path) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=with_dashboard(app, dist))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_root_and_deep_links_serve_the_page(site: httpx.AsyncClient) -> None:
    for path in ("/", "/agents/3", "/market?symbol=BTC", "/health"):
        response = await site.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_and_missing_ones_are_404(site: httpx.AsyncClient) -> None:
    asset = await site.get("/assets/index-abc123.js")
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    assert (await site.get("/assets/gone.js")).status_code == 404


async def test_api_is_never_shadowed(site: httpx.AsyncClient) -> None:
    board = await site.get("/api/leaderboard")
    assert board.status_code == 200
    assert board.json()["items"]
    missing = await site.get("/api/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")


def test_dashboard_available_needs_an_index(tmp_path: Path, dist: Path) -> None:
    assert dashboard_available(dist)
    assert not dashboard_available(tmp_path / "missing")
