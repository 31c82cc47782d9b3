"""The Functions entrypoint: what the host indexes, what each timer runs, and that importing it is cheap."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from pydantic import AliasChoices, BaseModel

import function_app
from shared import bootstrap
from shared.config import LocalSettingsJsonSource, Settings
from tests.api.conftest import FakeContainer, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMERS = {
    "market_data_timer": ("%Schedules__MarketData%", "market-data"),
    "run_agents_timer": ("%Schedules__RunAgents%", "run-agents"),
    "equity_snapshot_timer": ("%Schedules__EquitySnapshot%", "equity-snapshot"),
}


@pytest.fixture
def container() -> Iterator[FakeContainer]:
    fake = FakeContainer(settings=make_settings())
    bootstrap.set_container(fake)  # type: ignore[arg-type]
    yield fake
    bootstrap.set_container(None)


class FakeContext:
    """The part of `azure.functions.Context` the timers read."""

    invocation_id = "00000000-0000-0000-0000-000000000042"


@functools.cache
def functions_by_name() -> dict[str, Any]:
    """Index the app once, as the host does: a second `get_functions()` on the same app raises
    "does not have a unique function name", so the result is cached and the app's record of indexed names
    is cleared for any other test module that indexes it too."""
    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    function_app.app.functions_bindings = None
    return functions


def user_function(name: str) -> Callable[..., Any]:
    function: Callable[..., Any] = functions_by_name()[name].get_user_function()
    return function


def test_the_host_indexes_one_http_function_and_three_timers() -> None:
    functions = functions_by_name()

    assert set(functions) == {"http_app_func", *TIMERS}
    http = functions["http_app_func"].get_trigger()
    assert http.get_binding_name() == "httpTrigger"
    assert http.route == "/{*route}"
    assert str(http.auth_level.value) == "anonymous"
    for name, (schedule, _) in TIMERS.items():
        trigger = functions[name].get_trigger()
        assert trigger.get_binding_name() == "timerTrigger"
        assert trigger.schedule == schedule
        assert trigger.run_on_startup is False
        assert trigger.use_monitor is True
        assert json.loads(functions[name].get_function_json())["bindings"][0]["schedule"] == schedule


@pytest.mark.parametrize("past_due", [False, True])
@pytest.mark.parametrize("name", sorted(TIMERS))
def test_each_timer_runs_its_one_job_at_utc_now(
    container: FakeContainer, caplog: pytest.LogCaptureFixture, name: str, past_due: bool
) -> None:
    handler = user_function(name)
    before = datetime.now(UTC)

    with caplog.at_level(logging.INFO):
        result = handler(TimerRequest(past_due=past_due), FakeContext())
        if name == "run_agents_timer":
            import asyncio

            result = asyncio.run(result)

    assert result is None
    [(job, at)] = container.job_calls
    assert job == TIMERS[name][1]
    assert at.utcoffset() == timedelta(0)
    if job in ("run-agents", "equity-snapshot"):  # the cycle the firing belongs to: now floored to the hour
        assert at == container.cycle_time(before) or at == container.cycle_time(datetime.now(UTC))
        assert (at.minute, at.second, at.microsecond) == (0, 0, 0)
    else:
        assert before <= at <= datetime.now(UTC)
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{job} finished" in m for m in messages)
    assert any("past due" in m for m in messages) is past_due


def test_running_a_timer_twice_calls_the_idempotent_job_twice(container: FakeContainer) -> None:
    handler = user_function("equity_snapshot_timer")

    handler(TimerRequest(), FakeContext())
    handler(TimerRequest(), FakeContext())

    assert [job for job, _ in container.job_calls] == ["equity-snapshot", "equity-snapshot"]


async def _call_http_function(*requests: func.HttpRequest) -> list[func.HttpResponse]:
    """Invoke the indexed HTTP function as the worker would, then undo its one-time ASGI lifespan startup.

    The startup binds queues to this event loop and `AsgiFunctionApp.__del__` would run the shutdown at
    interpreter exit: shut it down here, in this loop, and forget the loop-bound state for later tests."""
    app, http_function = function_app.app, user_function("http_app_func")
    try:
        return [await http_function(request, None) for request in requests]
    finally:
        if app.startup_task_done:
            await app.middleware.notify_shutdown()
            app.startup_task_done = False
            app.middleware.lifespan_receive_queue = None
            app.middleware.lifespan_startup_event = None
            app.middleware.lifespan_shutdown_event = None


@pytest.mark.anyio
async def test_the_http_function_serves_the_api_under_the_route_prefix(container: FakeContainer) -> None:
    trades = func.HttpRequest(
        method="GET",
        url="http://localhost:7071/api/agents/1/trades?limit=2&offset=1",
        headers={"origin": "http://localhost:5173"},
        body=b"",
        route_params={"route": "agents/1/trades"},
    )
    health = func.HttpRequest(method="GET", url="http://localhost:7071/api/health", headers={}, body=b"")

    trades_response, health_response = await _call_http_function(trades, health)

    assert trades_response.status_code == 200
    assert [t["id"] for t in json.loads(trades_response.get_body())["items"]] == [110, 109]
    assert trades_response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert health_response.status_code == 200
    assert json.loads(health_response.get_body())["status"] == "ok"


@pytest.mark.anyio
async def test_admin_job_through_the_functions_route(container: FakeContainer) -> None:
    request = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/admin/jobs/run-agents",
        headers={"x-functions-key": "test-admin-key", "content-type": "application/json"},
        body=b'{"at": "2024-03-01T12:30:00Z"}',
    )

    [response] = await _call_http_function(request)

    assert response.status_code == 200, response.get_body()
    assert container.job_calls == [("run-agents", datetime(2024, 3, 1, 12, tzinfo=UTC))]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_importing_function_app_is_cheap_and_side_effect_free(tmp_path: Path) -> None:
    database = tmp_path / "race.db"
    probe = (
        "import json, sys\n"
        "import function_app\n"
        "modules = sorted(sys.modules)\n"
        "from shared import bootstrap\n"
        "print(json.dumps({'modules': modules, 'container': bootstrap._container is not None}))\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.lower().startswith(("api__", "connectionstrings__"))},
        "PYTHONPATH": str(REPO_ROOT),
        "ConnectionStrings__TradingDb": f"sqlite:///{database}",
        # A setting that cannot be parsed: reading settings at import would fail the import.
        "Api__MaxPageSize": "not-a-number",
    }
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    completed = subprocess.run(
        [sys.executable, "-B", "-c", probe], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["container"] is False
    heavy = (
        # Timers never serve HTTP: FastAPI, pydantic and the settings are imported by the first invocation.
        "fastapi",
        "pydantic",
        "torch",
        "alembic",
        "sqlalchemy",
        "azure.identity",
        "azure.keyvault",
        "azure.monitor",
        "opentelemetry.sdk",
        "pyodbc",
    )
    assert [m for m in report["modules"] if m.startswith(heavy)] == []
    assert list(workdir.iterdir()) == []
    assert not database.exists()


def _setting_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        alias = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_names(annotation, f"{prefix}{alias}__")
        elif isinstance(field.validation_alias, AliasChoices):
            names.add(f"{prefix}{field.validation_alias.choices[0]!s}")
        else:
            names.add(f"{prefix}{alias}")
    return names


def test_local_settings_example_lists_every_setting_with_a_valid_value() -> None:
    example_path = REPO_ROOT / "local.settings.json.example"
    values = json.loads(example_path.read_text())["Values"]

    missing = _setting_names(Settings) - set(values)
    assert missing == set(), f"add these to local.settings.json.example: {sorted(missing)}"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["AzureWebJobsFeatureFlags"] == "EnableWorkerIndexing"
    settings = Settings(**LocalSettingsJsonSource(Settings, path=example_path)())
    assert settings.api.admin_key is not None
    for schedule in (settings.schedules.market_data, settings.schedules.run_agents, settings.schedules.equity_snapshot):
        assert len(schedule.split()) == 6  # NCRONTAB: seconds first


def test_host_json_matches_the_http_routes() -> None:
    host = json.loads((REPO_ROOT / "host.json").read_text())

    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    assert "Request" in host["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"]


@pytest.mark.anyio
async def test_the_lazy_http_app_is_built_once_on_first_use() -> None:
    from shared.api.lazy import LazyAsgiApp

    built: list[int] = []
    seen: list[str] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    def factory() -> Any:
        built.append(1)
        return asgi

    lazy = LazyAsgiApp(factory)
    assert built == [], "nothing is built before the first request"
    await lazy({"path": "/api/health"}, None, None)  # type: ignore[arg-type]
    await lazy({"path": "/api/agents"}, None, None)  # type: ignore[arg-type]

    assert built == [1]
    assert seen == ["/api/health", "/api/agents"]
