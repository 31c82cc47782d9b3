"""`python -m shared.replay` on a real race database: the side-by-side text, --json, a counterfactual, and the
exit statuses of a refusal and of bad arguments."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared.adapters.db.models import DecisionRow, TradeRow
from shared.bootstrap import set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare
from shared.replay import main

START = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def race_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """A two-cycle race of the baselines; the CLI finds it through ConnectionStrings__TradingDb. Returns the
    buy-and-hold agent's first decision (a buy) and the always-hold agent's id."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    container = prepare(
        Settings(
            connection_strings=ConnectionStrings(trading_db=url), market_data=MarketDataSettings(replay_start=START)
        )
    )

    async def run() -> None:
        for at in (START, START + timedelta(hours=1)):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)

    asyncio.run(run())
    with container.uow_factory() as uow:
        agents = {a.model: a.id for a in uow.agents.list()}
        statement = select(func.min(DecisionRow.id)).where(DecisionRow.agent_id == agents["buy_and_hold"])
        decision_id: int = uow.connection.execute(statement).scalar_one()  # type: ignore[attr-defined]
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
    set_container(None)
    monkeypatch.setenv("ConnectionStrings__TradingDb", url)
    return decision_id, agents["always_hold"]


def test_the_cli_prints_the_replay_beside_the_original(
    race_db: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    decision_id, holder = race_db

    assert main([str(decision_id)]) == 0
    text = capsys.readouterr().out
    assert f"Decision {decision_id} of agent" in text
    assert "replayed on: Buy & Hold BTC" in text
    assert "IDENTICAL decision" in text
    orders = next(line for line in text.splitlines() if line.startswith("orders"))
    left, right = orders.removeprefix("orders").split(" | ")
    assert left.strip() == right.strip()
    assert left.strip().startswith("BUY BTC $")

    assert main([str(decision_id), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identical"] is True
    assert result["original"]["fills"] == result["counterfactual"]["fills"]
    assert len(result["original"]["fills"]) == 1

    assert main([str(decision_id), "--agent-id", str(holder)]) == 0
    text = capsys.readouterr().out
    assert "DIFFERENT decision" in text
    assert "HOLD (no orders)" in text


def test_refusals_exit_1_and_bad_arguments_2(race_db: tuple[int, int], capsys: pytest.CaptureFixture[str]) -> None:
    decision_id, _ = race_db
    assert main(["999999"]) == 1
    assert "replay refused (decision_not_found): decision 999999 not found" in capsys.readouterr().err
    assert main([str(decision_id), "--provider", "acme", "--model", "m"]) == 1
    assert "invalid_replay_agent" in capsys.readouterr().err
    for bad in (["0"], [str(decision_id), "--provider", "baseline"], ["1", "--agent-id", "2", "--model", "m"]):
        with pytest.raises(SystemExit) as exited:
            main(bad)
        assert exited.value.code == 2


def test_the_cli_writes_nothing(race_db: tuple[int, int], tmp_path: Path) -> None:
    from shared.adapters.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    try:

        def rows() -> tuple[int, int]:
            with engine.connect() as connection:
                return (
                    connection.execute(select(func.count()).select_from(DecisionRow)).scalar_one(),
                    connection.execute(select(func.count()).select_from(TradeRow)).scalar_one(),
                )

        before = rows()
        assert main([str(race_db[0]), "--json"]) == 0
        assert rows() == before
    finally:
        engine.dispose()
