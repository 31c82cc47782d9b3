"""`make run` with the ML agent: the local race starts ml_service as a second process, the ML agent races
(decisions recorded, no fallback), the process stops cleanly; if it cannot start, the race runs without it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.bootstrap import Container, set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, MlServiceProcess, prepare, run_simulated_cycles, start_ml_service

START = datetime(2024, 4, 1, tzinfo=UTC)


def _settings(db: Path) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
    )


def _ml_agent(container: Container) -> tuple[int, bool, str | None]:
    with container.uow_factory() as uow:
        [agent] = [a for a in uow.agents.list() if a.provider == "custom_ml"] or [
            a for a in uow.agents.list(active_only=False) if a.provider == "custom_ml"
        ]
    return agent.id, agent.active, agent.inactive_reason


@pytest.fixture
def cleanup() -> Iterator[list[MlServiceProcess]]:
    started: list[MlServiceProcess] = []
    yield started
    for service in started:
        service.stop()
    set_container(None)


def test_the_local_race_starts_the_ml_service_and_the_ml_agent_races(
    tmp_path: Path, cleanup: list[MlServiceProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, service, reason = start_ml_service(_settings(tmp_path / "race.db"), log_path=tmp_path / "ml.log")
    assert service is not None, capsys.readouterr().out
    cleanup.append(service)
    assert reason is None
    assert settings.custom_ml.base_url == service.base_url
    assert service.base_url.startswith("http://127.0.0.1:")
    assert "the Custom ML agent races" in capsys.readouterr().out

    container = prepare(settings)
    agent_id, active, _ = _ml_agent(container)
    assert active is True
    options = LocalRaceOptions(seconds_per_cycle=0, max_cycles=3, serve_http=False)
    assert asyncio.run(run_simulated_cycles(container, options, asyncio.Event())) == 3

    with container.uow_factory() as uow:
        assert uow.decisions.decided_agent_ids(START) >= {agent_id}
    rows = container.queries.decisions(agent_id, limit=10, offset=0).items
    assert len(rows) == 3
    assert {r.status for r in rows} == {"ok"}, [r.hold_reason for r in rows]
    assert all("direction-mlp" in r.reasoning for r in rows)

    process = service.process
    assert process is not None
    service.stop()
    assert process.returncode is not None  # stopped, not left behind


def test_a_service_that_cannot_start_leaves_the_ml_agent_out_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup: list[MlServiceProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MlService__ArtifactDir", str(tmp_path / "no-model-here"))
    settings, service, reason = start_ml_service(_settings(tmp_path / "race.db"), log_path=tmp_path / "ml.log")

    assert service is None
    assert reason is not None
    assert reason.startswith("ML service not available: it did not start (it exited with code")
    assert "python -m ml_service.train" in reason  # the service's own error, from its log
    assert "sits this race out" in capsys.readouterr().out

    container = prepare(settings, ml_unavailable=reason)
    _, active, inactive_reason = _ml_agent(container)
    assert active is False
    assert inactive_reason == reason
    options = LocalRaceOptions(seconds_per_cycle=0, max_cycles=1, serve_http=False)
    assert asyncio.run(run_simulated_cycles(container, options, asyncio.Event())) == 1


def test_a_configured_service_url_is_used_as_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configured = _settings(tmp_path / "race.db").model_copy(
        update={"custom_ml": Settings().custom_ml.model_copy(update={"base_url": "http://10.0.0.5:8080"})}
    )
    settings, service, reason = start_ml_service(configured)
    assert (settings, service, reason) == (configured, None, None)
    assert "configured service at http://10.0.0.5:8080" in capsys.readouterr().out
