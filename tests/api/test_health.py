from __future__ import annotations

import httpx
import pytest

from shared.api.app import create_app
from tests.api.conftest import FakeContainer, client_for

pytestmark = pytest.mark.anyio


async def test_health_is_ok_when_the_database_answers(client: httpx.AsyncClient, container: FakeContainer) -> None:
    response = await client.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"configuration": "ok", "database": "ok"}, "details": {}}
    assert container.queries.calls_to("ping") == [{}]


async def test_health_is_503_without_leaking_the_database_error(
    client: httpx.AsyncClient, container: FakeContainer
) -> None:
    container.queries.ping_error = ConnectionError("server=sql-prod.database.windows.net;password=hunter2")

    response = await client.get("/api/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"configuration": "ok", "database": "unavailable"},
        "details": {},
    }
    assert "hunter2" not in response.text
    assert "sql-prod" not in response.text


async def test_health_is_503_when_the_container_cannot_be_built() -> None:
    def broken_provider() -> FakeContainer:
        raise ValueError("Api__AdminKey is still a placeholder")

    async with client_for(create_app(broken_provider)) as client:  # type: ignore[arg-type]
        response = await client.get("/api/health")
        data_response = await client.get("/api/agents")

    assert response.status_code == 503
    assert response.json()["checks"] == {"configuration": "unavailable", "database": "unavailable"}
    assert data_response.status_code == 503
    assert data_response.json()["error"]["code"] == "service_unavailable"
    assert "placeholder" not in data_response.text


async def test_a_non_critical_dependency_down_is_degraded_with_200(container: FakeContainer) -> None:
    container.dependencies = {
        "market_data": ("ok", "coingecko: circuit closed"),
        "llm:llama:llama-3.3-70b-versatile": ("unavailable", "circuit open"),
        "ml_service": ("unavailable", "not reachable (ConnectError)"),
    }

    async with client_for(create_app(lambda: container)) as client:  # type: ignore[arg-type, return-value]
        response = await client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["llm:llama:llama-3.3-70b-versatile"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["details"]["ml_service"] == "not reachable (ConnectError)"


async def test_the_database_down_is_503_whatever_the_others_say(container: FakeContainer) -> None:
    container.dependencies = {"market_data": ("ok", None)}
    container.queries.ping_error = ConnectionError("down")

    async with client_for(create_app(lambda: container)) as client:  # type: ignore[arg-type, return-value]
        response = await client.get("/api/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_the_openapi_schema_documents_the_health_states() -> None:
    schema = create_app(lambda: None).openapi()  # type: ignore[arg-type, return-value]

    health = schema["components"]["schemas"]["HealthPublic"]
    assert health["properties"]["status"]["enum"] == ["ok", "degraded", "unavailable"]
    assert "details" in health["properties"]


async def test_health_probes_once_every_few_seconds_whatever_the_callers(
    client: httpx.AsyncClient, container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.api.routes import health

    now = [1000.0]
    monkeypatch.setattr(health, "_clock", lambda: now[0])
    for _ in range(5):
        assert (await client.get("/api/health")).status_code == 200
    assert len(container.queries.calls_to("ping")) == 1

    container.queries.ping_error = ConnectionError("down")
    assert (await client.get("/api/health")).status_code == 200  # still the cached answer
    now[0] += health.PROBE_CACHE_S
    assert (await client.get("/api/health")).status_code == 503
    assert len(container.queries.calls_to("ping")) == 2
