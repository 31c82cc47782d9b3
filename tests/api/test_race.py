from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
import pytest

from tests.api.conftest import FakeContainer, assert_error

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
    assert status.last_cycle is not None
    container.queries.status = replace(status, cycles=49, last_cycle=status.last_cycle.replace(hour=0, day=3))
    moved = await client.get("/api/race", headers={"If-None-Match": first.headers["etag"]})
    assert moved.status_code == 200
    assert moved.json()["cycles"] == 49
    assert moved.json()["version"] != body["version"]


async def test_the_version_moves_when_portfolios_are_marked_after_the_cycle(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    first = (await client.get("/api/race")).json()
    status = container.queries.status
    container.queries.status = replace(status, last_mark_at=status.last_cycle)  # the equity timer, minutes later
    assert (await client.get("/api/race")).json()["version"] != first["version"]


async def test_a_long_poll_is_held_while_nothing_changes_then_revalidates_to_304(client: httpx.AsyncClient) -> None:
    current = await client.get("/api/race")
    version = current.json()["version"]
    started = time.monotonic()

    held = await client.get(
        "/api/race", params={"wait": 1, "since": version}, headers={"If-None-Match": current.headers["etag"]}
    )

    assert time.monotonic() - started >= 0.9
    assert held.status_code == 304  # the same document: no body on the wire


async def test_a_long_poll_answers_as_soon_as_a_cycle_lands(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    version = (await client.get("/api/race")).json()["version"]
    status = container.queries.status
    assert status.last_cycle is not None
    landed = replace(status, cycles=49, last_cycle=status.last_cycle.replace(day=3, hour=0))

    async def land_a_cycle() -> None:
        await asyncio.sleep(0.3)
        container.queries.status = landed

    started = time.monotonic()
    landing = asyncio.create_task(land_a_cycle())
    moved = await client.get("/api/race", params={"wait": 10, "since": version})
    await landing

    assert time.monotonic() - started < 3  # rechecked every second, not held for the whole 10 s
    assert (moved.status_code, moved.json()["cycles"]) == (200, 49)
    assert moved.json()["version"] != version


async def test_a_long_poll_behind_the_race_answers_at_once(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    answer = await client.get("/api/race", params={"wait": 10, "since": "0123456789abcdef"})
    assert answer.status_code == 200
    assert answer.json()["version"] != "0123456789abcdef"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "params", [{"wait": 31}, {"wait": -1}, {"wait": "soon"}, {"wait": 5, "since": "not-a-version"}, {"since": "A" * 16}]
)
async def test_bad_long_poll_parameters_are_a_422(client: httpx.AsyncClient, params: dict[str, int | str]) -> None:
    assert_error(await client.get("/api/race", params=params), 422, "validation_error")
