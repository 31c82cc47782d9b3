from __future__ import annotations

import logging
import re
import sys

import httpx
import pytest
from fastapi import FastAPI

from shared.api.app import create_app
from tests.api.conftest import DASHBOARD_ORIGIN, FakeContainer, assert_error, client_for

pytestmark = pytest.mark.anyio

EXPECTED_ROUTES = {
    ("get", "/api/health"),
    ("get", "/api/race"),
    ("get", "/api/leaderboard"),
    ("get", "/api/agents"),
    ("get", "/api/agents/{agent_id}"),
    ("get", "/api/agents/{agent_id}/equity"),
    ("get", "/api/agents/{agent_id}/trades"),
    ("get", "/api/agents/{agent_id}/decisions"),
    ("get", "/api/equity"),
    ("get", "/api/agents/{agent_id}/stats"),
    ("get", "/api/market/prices"),
    ("get", "/api/market/{symbol}/candles"),
    ("post", "/api/admin/jobs/market-data"),
    ("post", "/api/admin/jobs/run-agents"),
    ("post", "/api/admin/jobs/equity-snapshot"),
    ("post", "/api/admin/decisions/{decision_id}/replay"),
}


def test_building_the_app_does_not_resolve_the_container() -> None:
    def provider() -> FakeContainer:
        raise AssertionError("the container must be resolved per request, not when the app is built")

    assert isinstance(create_app(provider), FastAPI)  # type: ignore[arg-type]


async def test_openapi_lists_every_route_and_documents_money_as_strings(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/openapi.json")

    assert response.status_code == 200
    document = response.json()
    routes = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes == EXPECTED_ROUTES
    equity = document["components"]["schemas"]["AgentPublic"]["properties"]["equity"]
    assert {"type": "string", "format": "decimal"}.items() <= equity["anyOf"][0].items()
    for schema in ("AgentPublic", "LeaderboardEntryPublic"):
        properties = document["components"]["schemas"][schema]["properties"]
        assert properties["prompt_tokens"]["type"] == properties["completion_tokens"]["type"] == "integer"
        assert properties["llm_cost_usd"]["format"] == "decimal"
        assert {"prompt_tokens", "completion_tokens", "llm_cost_usd"} <= set(
            document["components"]["schemas"][schema]["required"]
        )


async def test_swagger_ui_is_served_under_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/docs")

    assert response.status_code == 200
    assert "/api/openapi.json" in response.text


async def test_cors_echoes_an_allowed_origin(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/leaderboard", headers={"origin": DASHBOARD_ORIGIN})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN


async def test_cors_preflight_allows_the_admin_header_from_an_allowed_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/admin/jobs/run-agents",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-admin-key,content-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_cors_ignores_other_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/leaderboard", headers={"origin": "https://evil.example"})
    preflight = await client.options(
        "/api/leaderboard", headers={"origin": "https://evil.example", "access-control-request-method": "GET"}
    )

    assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


async def test_a_wildcard_origin_setting_is_never_honoured() -> None:
    from tests.api.conftest import make_settings

    container = FakeContainer(settings=make_settings(CorsOrigins="*"))
    async with client_for(create_app(lambda: container)) as client:  # type: ignore[arg-type,return-value]
        response = await client.get("/api/health", headers={"origin": "https://evil.example"})

    assert "access-control-allow-origin" not in response.headers


async def test_unknown_path_and_wrong_method_are_json_errors(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/nope"), 404, "not_found")
    assert_error(await client.delete("/api/leaderboard"), 405, "method_not_allowed")


async def test_an_unexpected_error_is_a_generic_500_that_is_logged(
    client: httpx.AsyncClient, container: FakeContainer, caplog: pytest.LogCaptureFixture
) -> None:
    def explode() -> None:
        raise RuntimeError("secret connection string in a stack trace")

    container.queries.latest_prices = explode  # type: ignore[method-assign,assignment]

    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/market/prices", headers={"origin": DASHBOARD_ORIGIN})

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "secret" not in response.text
    assert response.headers["access-control-allow-origin"] == DASHBOARD_ORIGIN
    request_id = response.headers["x-request-id"]
    (record,) = [r for r in caplog.records if r.name == "shared.api.errors"]
    assert record.getMessage() == f"request GET /api/market/prices failed: RuntimeError [request {request_id}]"
    assert record.exc_info is not None  # for telemetry and --verbose


def test_the_race_console_prints_an_error_as_one_line() -> None:
    from shared.local_race import OneLineFormatter

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "request failed", None, sys.exc_info())

    assert OneLineFormatter("%(levelname)s %(message)s").format(record) == "ERROR request failed"
    assert "Traceback" in logging.Formatter("%(message)s").format(record)  # other handlers still get it


async def test_the_docs_load_every_asset_from_the_app_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/api/docs")

    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls
    assert all(url.startswith("/api/") for url in urls), urls
    for url in urls:
        assert (await client.get(url)).status_code == 200, url
    script = await client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
