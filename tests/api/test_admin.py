from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.api.app import create_app
from tests.api.conftest import ADMIN_KEY, FakeContainer, assert_error, client_for, make_settings

pytestmark = pytest.mark.anyio

JOBS = ["market-data", "run-agents", "equity-snapshot"]
AUTH = {"x-admin-key": ADMIN_KEY}


@pytest.mark.parametrize("job", JOBS)
async def test_missing_admin_key_is_401(client: httpx.AsyncClient, container: FakeContainer, job: str) -> None:
    assert_error(await client.post(f"/api/admin/jobs/{job}"), 401, "unauthorized", mentions="missing admin key")
    assert container.job_calls == []


@pytest.mark.parametrize("key", ["wrong-key", "", ADMIN_KEY + "x", "clé-ünïcode"])
async def test_wrong_admin_key_is_401(client: httpx.AsyncClient, container: FakeContainer, key: str) -> None:
    response = await client.post("/api/admin/jobs/market-data", headers={"x-admin-key": key.encode()})

    assert response.status_code == 401
    assert container.job_calls == []


async def test_admin_endpoints_are_403_when_no_key_is_configured() -> None:
    container = FakeContainer(settings=make_settings(AdminKey=None))
    async with client_for(create_app(lambda: container)) as client:  # type: ignore[arg-type,return-value]
        response = await client.post("/api/admin/jobs/run-agents", headers=AUTH)

    assert_error(response, 403, "forbidden", mentions="admin endpoints disabled: set Api__AdminKey")
    assert container.job_calls == []


async def test_market_data_job_runs_at_the_given_time(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.post(
        "/api/admin/jobs/market-data", params={"at": "2024-03-01T12:15:00+01:00"}, headers=AUTH
    )

    assert response.status_code == 200, response.text
    at = datetime(2024, 3, 1, 11, 15, tzinfo=UTC)
    assert container.job_calls == [("market-data", at)]
    assert container.job_calls[0][1].tzinfo is UTC
    assert response.json() == {
        "job": "market-data",
        "at": "2024-03-01T11:15:00Z",
        "cycle_time": None,
        "report": {"job": "market-data", "at": "2024-03-01T11:15:00+00:00", "written": 3},
    }


async def test_run_agents_runs_the_cycle_the_time_belongs_to(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    response = await client.post("/api/admin/jobs/run-agents", json={"at": "2024-03-01T12:34:56Z"}, headers=AUTH)

    assert response.status_code == 200, response.text
    assert container.job_calls == [("run-agents", datetime(2024, 3, 1, 12, tzinfo=UTC))]
    assert response.json()["cycle_time"] == "2024-03-01T12:00:00Z"


async def test_equity_job_accepts_the_functions_key_header(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.post(
        "/api/admin/jobs/equity-snapshot",
        json={"at": "2024-03-01T12:00:00Z"},
        headers={"x-functions-key": ADMIN_KEY},
    )

    assert response.status_code == 200, response.text
    assert container.job_calls == [("equity-snapshot", datetime(2024, 3, 1, 12, tzinfo=UTC))]


@pytest.mark.parametrize("job", JOBS)
async def test_job_defaults_to_now_in_utc(client: httpx.AsyncClient, container: FakeContainer, job: str) -> None:
    before = datetime.now(UTC)
    response = await client.post(f"/api/admin/jobs/{job}", headers=AUTH)

    assert response.status_code == 200, response.text
    [(_, at)] = container.job_calls
    assert at.tzinfo is not None
    assert before - timedelta(hours=1) <= at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("request_kwargs", "mentions"),
    [
        ({"params": {"at": "2024-03-01T12:00:00"}}, "timezone is required"),
        ({"json": {"at": "2024-03-01T12:00:00"}}, "timezone is required"),
        ({"params": {"at": "noon"}}, "query.at"),
        ({"json": {"at": "2024-03-01T12:00:00Z", "extra": 1}}, "body.extra"),
        ({"json": [1, 2]}, "body"),
        (
            {"params": {"at": "2024-03-01T12:00:00Z"}, "json": {"at": "2024-03-01T13:00:00Z"}},
            "both the query and the body",
        ),
    ],
)
async def test_bad_job_time_is_422(
    client: httpx.AsyncClient, container: FakeContainer, request_kwargs: dict[str, object], mentions: str
) -> None:
    response = await client.post("/api/admin/jobs/market-data", headers=AUTH, **request_kwargs)  # type: ignore[arg-type]

    assert_error(response, 422, "validation_error", mentions=mentions)
    assert container.job_calls == []


async def test_malformed_json_body_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/jobs/market-data", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("job", JOBS)
async def test_a_time_the_race_cannot_run_at_is_409_and_runs_nothing(
    client: httpx.AsyncClient, container: FakeContainer, job: str
) -> None:
    container.refuse_job_time = "at 9999-12-31T00:00:00+00:00 is ahead of the race's clock"

    response = await client.post(f"/api/admin/jobs/{job}", params={"at": "9999-12-31T00:00:00Z"}, headers=AUTH)

    assert_error(response, 409, "job_time_refused", mentions="ahead of the race's clock")
    assert container.job_calls == []
