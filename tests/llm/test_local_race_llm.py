"""`make run LOCAL_LLM=1`: the local race starts a real LLM (SmolLM2-135M on llama.cpp) for its lifetime, the
local agent races while the server runs and sits out, with the reason, when it is off or cannot start."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.agents.llm.providers import LOCAL_SMOLLM2_AGENT_NAME
from shared.bootstrap import Container, bootstrap, set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.domain.model import Agent
from shared.local_race import LOCAL_LLM_OFF, LocalLlm, local_llm_url, main, prepare

START = datetime(2024, 3, 14, 12, tzinfo=UTC)
KNOWN_HOLD_PREFIXES = ("invalid output", "rate limited", "circuit open")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_global_container() -> Iterator[None]:
    yield
    set_container(None)


def _settings(db: Path) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
    )


def _local_agent(container: Container) -> Agent | None:
    with container.uow_factory() as uow:
        return uow.agents.get_by_name(LOCAL_SMOLLM2_AGENT_NAME)


def test_the_local_agent_races_only_while_its_server_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "race.db")
    assert _local_agent(prepare(settings)) is None, "not added unless Local__LocalLlm is on"

    url = local_llm_url(8088)
    agent = _local_agent(prepare(settings, local_llm=LocalLlm(enabled=True, base_url=url)))
    assert agent is not None
    assert (agent.active, agent.inactive_reason, agent.params["base_url"]) == (True, None, url)

    agent = _local_agent(prepare(settings))  # the next `make run` without it
    assert agent is not None
    assert (agent.active, agent.inactive_reason) == (False, LOCAL_LLM_OFF)

    moved = local_llm_url(8099)
    agent = _local_agent(prepare(settings, local_llm=LocalLlm(enabled=True, base_url=moved)))
    assert agent is not None
    assert agent.active is False
    assert f"calls {url} but the local server is at {moved}" in (agent.inactive_reason or "")

    agent = _local_agent(prepare(settings, local_llm=LocalLlm(enabled=True, base_url=url)))
    assert agent is not None
    assert agent.active is True


def test_a_local_llm_that_cannot_start_leaves_its_agent_out_and_the_race_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "race.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        _race_env(monkeypatch, db, port)
        main(["--cycles", "1", "--no-http", "--no-ml"])
    out = capsys.readouterr().out
    assert f"port {port} is in use" in out
    assert "the local agent sits this race out" in out
    container = bootstrap(_settings(db))
    agent = _local_agent(container)
    assert agent is not None
    assert agent.active is False
    assert (agent.inactive_reason or "").startswith("not available: the local llama.cpp server did not start")
    assert len(container.queries.decisions(1, limit=5, offset=0).items) == 1  # the race ran without it


def test_make_run_local_llm_races_a_real_model_and_stops_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One cycle of the real thing: SmolLM2 answers (often badly); whatever it says is executed or recorded
    as a HOLD with the reason. ~15-40 s on two cores."""
    db, port = tmp_path / "race.db", free_port()
    _race_env(monkeypatch, db, port)
    started = time.monotonic()
    main(["--cycles", "1", "--no-http", "--no-ml"])
    out = capsys.readouterr().out
    assert f"Local LLM on {local_llm_url(port)}: it races" in out, out

    container = bootstrap(_settings(db))
    agent = _local_agent(container)
    assert agent is not None
    assert agent.active is True
    [decision] = container.queries.decisions(agent.id, limit=5, offset=0).items
    said = decision.hold_reason or decision.reasoning
    tokens = f"{decision.prompt_tokens}+{decision.completion_tokens} tokens"
    print(f"\nSmolLM2 in the local race ({time.monotonic() - started:.1f}s): {decision.status}, {said!r}, {tokens}")
    # The model really answered (no timeout, no connection error): parsed orders, or a reasoned HOLD.
    assert decision.prompt_tokens is not None
    assert decision.prompt_tokens > 500
    if decision.status != "ok":
        assert (decision.hold_reason or "").startswith(KNOWN_HOLD_PREFIXES), decision.hold_reason
    [summary] = [s for s in container.queries.agent_summaries(starting_cash=100_000) if s.agent.id == agent.id]
    assert summary.prompt_tokens == decision.prompt_tokens
    # The server stopped with the race: its port is free again.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def _race_env(monkeypatch: pytest.MonkeyPatch, db: Path, port: int) -> None:
    """What `make run LOCAL_LLM=1` sets, on a fresh database."""
    monkeypatch.setenv("ConnectionStrings__TradingDb", f"sqlite:///{db}")
    monkeypatch.setenv("MarketData__ReplayStart", START.isoformat())
    monkeypatch.setenv("Local__LocalLlm", "true")
    monkeypatch.setenv("Local__LocalLlmPort", str(port))
    monkeypatch.setenv("Race__AgentTimeoutSeconds", "60")
    monkeypatch.setenv("Llama__TimeoutSeconds", "55")
