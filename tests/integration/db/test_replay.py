"""Replaying stored decisions on real databases and the real 2024 candles: the baselines rerun identically,
another model gives a counterfactual, a changed candle or a decision without inputs is refused, and nothing is
ever written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from shared.adapters.db.models import (
    AgentRow,
    CandleRow,
    CycleRow,
    DecisionRow,
    EquitySnapshotRow,
    PortfolioRow,
    PositionRow,
    TradeRow,
)
from shared.bootstrap import Container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare
from shared.services.replay import (
    DecisionNotFoundError,
    ReplayAgentError,
    ReplayRefusedError,
    ReplayResult,
    SnapshotMismatchError,
)

START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
CYCLES = 30  # past the baselines' 24-candle lookbacks: momentum and mean reversion decide on real signals
TABLES = (AgentRow, CandleRow, CycleRow, DecisionRow, EquitySnapshotRow, PortfolioRow, PositionRow, TradeRow)


@pytest.fixture
def race(new_db_url: Callable[[], str]) -> Iterator[Container]:
    """A race of the six baselines, run by the timer jobs for CYCLES hours."""
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=new_db_url()),
        market_data=MarketDataSettings(replay_start=START),
    )
    container = prepare(settings)

    async def run() -> None:
        for at in (START + i * HOUR for i in range(CYCLES)):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            container.run_equity_job(at)

    asyncio.run(run())
    yield container
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]


def everything(container: Container) -> list[list[tuple[Any, ...]]]:
    """Every row of every table (the race's whole state), in a stable order."""
    with container.uow_factory() as uow:
        connection = uow.connection  # type: ignore[attr-defined]
        result = []
        for model in TABLES:
            table: Any = model.__table__
            rows = connection.execute(select(*table.columns).order_by(*table.primary_key.columns))
            result.append([tuple(row) for row in rows])
        return result


def decisions(container: Container, **where: Any) -> list[Any]:
    with container.uow_factory() as uow:
        statement = select(DecisionRow.id, DecisionRow.agent_id, DecisionRow.cycle_time, DecisionRow.trade_count)
        for name, value in where.items():
            statement = statement.where(getattr(DecisionRow, name) == value)
        return list(uow.connection.execute(statement.order_by(DecisionRow.id)))  # type: ignore[attr-defined]


def agent_id(container: Container, model: str) -> int:
    with container.uow_factory() as uow:
        return next(a.id for a in uow.agents.list() if a.model == model)


def replay(container: Container, decision_id: int, **counterfactual: Any) -> ReplayResult:
    return asyncio.run(container.replay_decision(decision_id, **counterfactual))


def test_every_baseline_decision_replays_identically_and_nothing_is_written(race: Container) -> None:
    before = everything(race)
    # The first cycle (buy-and-hold buys, random trades), and the last (24-candle signals), every agent.
    chosen = decisions(race, cycle_time=START) + decisions(race, cycle_time=START + (CYCLES - 1) * HOUR)
    assert len(chosen) == 2 * 6  # the six baselines (controls among them) decide every cycle
    assert sum(row.trade_count for row in chosen) >= 2  # replayed fills are compared, not just holds

    for row in chosen:
        result = replay(race, row.id)
        assert result.identical, (row, result.original, result.counterfactual)
        assert result.counterfactual.orders == result.original.orders
        assert result.counterfactual.reasoning == result.original.reasoning
        assert result.counterfactual.confidence == result.original.confidence
        assert result.counterfactual.fills == result.original.fills  # the would-be fills are the real ones
        assert result.counterfactual.rejections == result.original.rejections
        assert len(result.original.fills) == row.trade_count
        assert result.same_model
        assert result.notes == ()
        assert result.prompt_identical is None  # the baselines have no prompt
        assert result.original_model["client"]["kind"] == "baseline"

    assert everything(race) == before  # not a row added, changed or removed anywhere


def test_another_agent_in_the_same_seat_gives_a_counterfactual(race: Container) -> None:
    buyer, holder = agent_id(race, "buy_and_hold"), agent_id(race, "always_hold")
    [first] = decisions(race, agent_id=buyer, cycle_time=START)
    assert first.trade_count == 1
    before = everything(race)

    result = replay(race, first.id, agent_id=holder)

    assert not result.identical
    assert not result.same_model
    assert result.original.orders[0]["symbol"] == "BTC"
    assert len(result.original.fills) == 1
    assert result.counterfactual.orders == []
    assert result.counterfactual.fills == []
    assert result.counterfactual.reasoning == "Control agent: always holds its starting cash."
    assert result.replay_model["model"] == "always_hold"
    assert result.original_model["model"] == "buy_and_hold"
    assert result.notes == ()  # a counterfactual is expected to differ: no "configuration changed" note

    by_name = replay(race, first.id, provider="baseline", model="momentum")
    assert by_name.replay_agent_name == "baseline momentum"
    assert by_name.counterfactual.reasoning.startswith("24-candle momentum")
    assert everything(race) == before


def test_a_changed_candle_is_refused_with_both_hashes(race: Container) -> None:
    momentum = agent_id(race, "momentum")
    [row] = decisions(race, agent_id=momentum, cycle_time=START + 29 * HOUR)
    [earlier] = decisions(race, agent_id=momentum, cycle_time=START + 10 * HOUR)
    stored_hash = replay(race, row.id).snapshot_sha256
    with race.uow_factory() as uow:  # one close in the decision's window, changed behind the race's back
        uow.connection.execute(  # type: ignore[attr-defined]
            update(CandleRow)
            .where(CandleRow.symbol == "ETH", CandleRow.open_time == START + 20 * HOUR)
            .values(close=CandleRow.close + 1)
        )
        uow.commit()
    before = everything(race)

    with pytest.raises(SnapshotMismatchError) as refused:
        replay(race, row.id)

    assert refused.value.code == "snapshot_mismatch"
    assert refused.value.stored == stored_hash
    assert refused.value.rebuilt is not None
    assert refused.value.rebuilt != stored_hash
    assert stored_hash in str(refused.value)
    assert refused.value.rebuilt in str(refused.value)
    # A decision made before that candle closed never saw it: it still replays, identically.
    assert replay(race, earlier.id).identical
    assert everything(race) == before


def test_a_decision_recorded_without_inputs_is_refused_and_says_why(race: Container) -> None:
    [row] = decisions(race, agent_id=agent_id(race, "random"), cycle_time=START)
    with race.uow_factory() as uow:  # as a decision recorded before migration 0007 is stored
        connection = uow.connection  # type: ignore[attr-defined]
        connection.execute(
            update(DecisionRow)
            .where(DecisionRow.id == row.id)
            .values(portfolio_before=None, model_settings=None, race_settings=None)
        )
        uow.commit()

    with pytest.raises(ReplayRefusedError, match="before decisions kept their replay inputs") as refused:
        replay(race, row.id)
    assert refused.value.code == "no_replay_inputs"


def test_unknown_decisions_and_agents_are_clear_errors(race: Container) -> None:
    with race.uow_factory() as uow:
        last = uow.connection.execute(select(func.max(DecisionRow.id))).scalar_one()  # type: ignore[attr-defined]
    with pytest.raises(DecisionNotFoundError, match=f"decision {last + 1} not found"):
        replay(race, last + 1)
    with pytest.raises(ReplayAgentError, match="agent 999 not found"):
        replay(race, last, agent_id=999)
    with pytest.raises(ReplayAgentError, match="unknown provider 'acme'"):
        replay(race, last, provider="acme", model="x")
    with pytest.raises(ReplayAgentError, match="provider and model go together"):
        replay(race, last, provider="baseline")
    with pytest.raises(ReplayAgentError, match="not both"):
        replay(race, last, agent_id=1, provider="baseline", model="momentum")
