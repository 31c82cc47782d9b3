from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from tests.api.conftest import FakeContainer

pytestmark = pytest.mark.anyio


async def test_race_reports_cycles_and_a_version_that_moves_with_them(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    first = await client.get("/api/race")
    assert first.status_code == 200
    body = first.json()
    assert body["cycles"] == 48
    assert body["first_cycle"] == "2024-03-01T00:00:00Z"
    assert body["last_cycle"] == "2024-03-02T23:00:00Z"

    unchanged = await client.get("/api/race", headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304

    status = container.queries.status
    container.queries.status = replace(status, cycles=49, last_cycle=status.last_cycle.replace(hour=0, day=3))
    moved = await client.get("/api/race", headers={"If-None-Match": first.headers["etag"]})
    assert moved.status_code == 200
    assert moved.json()["cycles"] == 49
    assert moved.json()["version"] != body["version"]
