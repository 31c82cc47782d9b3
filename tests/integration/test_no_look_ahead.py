"""No look-ahead, proven: the race run up to a time T on a database holding every bundled candle, and again on
one from which every candle closing after T was deleted, decides exactly the same up to T.

Every agent races: the six baselines and the Custom ML agent, whose every decision is an HTTP call to a real
ml_service process (one per race, so neither answers from the other's idempotency cache). Compared: every
decision's orders, reasoning, confidence, hold reason, rejections, snapshot hash, staleness and replay inputs,
every trade, every equity mark and every cycle record. A code path that read a candle closing after its cycle
(in the snapshot, the prices, the marks, the ML request) would see it in the first race only, and the two would
differ. Both the timer jobs and the backtest engine are checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from shared.adapters.db.models import CandleRow, CycleRow, DecisionRow, EquitySnapshotRow, TradeRow
from shared.bootstrap import Container, set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import MlServiceProcess, prepare, start_ml_service
from shared.services.ingest import ingest_market_data

START = datetime(2024, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
CYCLES = 24
T = START + (CYCLES - 1) * HOUR  # the last cycle compared
FULL_DATA_UNTIL = T + timedelta(days=3)  # what the full-data database holds beyond T
HISTORY = timedelta(hours=72)  # before START: the snapshots' 48-candle windows are full from the first cycle

DECISION_COLUMNS = (
    DecisionRow.agent_id,
    DecisionRow.cycle_time,
    DecisionRow.status,
    DecisionRow.reasoning,
    DecisionRow.confidence,
    DecisionRow.hold_reason,
    DecisionRow.orders,
    DecisionRow.rejections,
    DecisionRow.trade_count,
    DecisionRow.snapshot_sha256,
    DecisionRow.data_staleness_seconds,
    DecisionRow.portfolio_before,
    DecisionRow.race_settings,
    DecisionRow.model_settings,
)
TRADE_COLUMNS = (
    TradeRow.agent_id,
    TradeRow.cycle_time,
    TradeRow.symbol,
    TradeRow.side,
    TradeRow.quantity,
    TradeRow.price,
    TradeRow.notional,
    TradeRow.fee,
)
EQUITY_COLUMNS = (
    EquitySnapshotRow.agent_id,
    EquitySnapshotRow.at,
    EquitySnapshotRow.equity,
    EquitySnapshotRow.cash,
    EquitySnapshotRow.peak_equity,
    EquitySnapshotRow.max_drawdown,
)
CYCLE_COLUMNS = (CycleRow.cycle_time, CycleRow.snapshot_sha256, CycleRow.agents, CycleRow.decisions, CycleRow.trades)


@pytest.fixture
def services() -> Iterator[list[MlServiceProcess]]:
    started: list[MlServiceProcess] = []
    yield started
    for service in started:
        service.stop()
    set_container(None)


def race_to_t(db: Path, path: str, *, keep_candles_after_t: bool, services: list[MlServiceProcess]) -> dict[str, Any]:
    """Seed a race, load the bundled candles up to FULL_DATA_UNTIL (then delete those closing after T unless
    kept), run the cycles START..T by `path`, and return what it stored."""
    base = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{db}"),
        market_data=MarketDataSettings(replay_start=START),
    )
    settings, service, reason = start_ml_service(base, log_path=db.with_suffix(".ml.log"))
    assert service is not None, reason
    services.append(service)
    loader = prepare(settings)
    ingest_market_data(
        uow_factory=loader.uow_factory,
        provider=loader.market_data,
        now=FULL_DATA_UNTIL,
        interval=settings.market_data.interval,
        backfill=FULL_DATA_UNTIL - START + HISTORY,
    )
    after_t = CandleRow.open_time >= T  # the candle opening at T closes an hour after it
    with loader.uow_factory() as uow:
        connection: Any = uow.connection  # type: ignore[attr-defined]
        if not keep_candles_after_t:
            connection.execute(delete(CandleRow).where(after_t))
            uow.commit()
        candles_after_t = connection.execute(select(func.count()).select_from(CandleRow).where(after_t)).scalar_one()
    loader.uow_factory.engine.dispose()  # type: ignore[attr-defined]

    container = prepare(settings)  # a fresh process state: nothing remembered of the deleted candles
    try:
        with container.uow_factory() as uow:
            racing = {a.provider for a in uow.agents.list(active_only=True)}
        assert racing == {"baseline", "custom_ml"}
        if path == "timer":
            asyncio.run(_timer_jobs(container))
        else:
            report = asyncio.run(container.run_backtest(START, T + HOUR, chunk_cycles=10))
            assert report.cycles == CYCLES
        return {"candles_after_t": candles_after_t, "ml_replay": _replay_ml_at_t(container), **_stored(container)}
    finally:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
        service.stop()


def _replay_ml_at_t(container: Container) -> tuple[bool, bool | None]:
    """The ML agent's decision at T replayed against its still-running service: (identical, same request).
    The service answers a repeated Idempotency-Key only for the very same request body (422 otherwise)."""
    with container.uow_factory() as uow:
        connection: Any = uow.connection  # type: ignore[attr-defined]
        [ml] = [a.id for a in uow.agents.list(active_only=True) if a.provider == "custom_ml"]
        decision_id = connection.execute(
            select(DecisionRow.id).where(DecisionRow.agent_id == ml, DecisionRow.cycle_time == T)
        ).scalar_one()
    result = asyncio.run(container.replay_decision(decision_id))
    return result.identical, result.prompt_identical


async def _timer_jobs(container: Container) -> None:
    for at in (START + i * HOUR for i in range(CYCLES)):
        container.run_market_data_job(at)
        await container.run_agents_job_async(at)
        container.run_equity_job(at)


def _stored(container: Container) -> dict[str, list[tuple[Any, ...]]]:
    def rows(columns: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with container.uow_factory() as uow:
            connection: Any = uow.connection  # type: ignore[attr-defined]
            return [tuple(row) for row in connection.execute(select(*columns).order_by(*columns[:3]))]

    decisions = [_without_endpoint(row) for row in rows(DECISION_COLUMNS)]
    return {
        "decisions": decisions,
        "trades": rows(TRADE_COLUMNS),
        "equity": rows(EQUITY_COLUMNS),
        "cycles": rows(CYCLE_COLUMNS),
    }


def _without_endpoint(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The model settings without the ML service's URL: each race has its own service on its own port."""
    settings = dict(row[-1])
    client = dict(settings.get("client", {}))
    if client.get("kind") == "custom_ml":
        assert client.pop("endpoint").startswith("http://127.0.0.1:")
    return (*row[:-1], settings | {"client": client})


@pytest.mark.parametrize("path", ["timer", "backtest"])
def test_deleting_every_candle_after_t_changes_no_decision_up_to_t(
    tmp_path: Path, path: str, services: list[MlServiceProcess]
) -> None:
    full = race_to_t(tmp_path / "full.db", path, keep_candles_after_t=True, services=services)
    cut = race_to_t(tmp_path / "cut.db", path, keep_candles_after_t=False, services=services)

    assert full["candles_after_t"] == 5 * (FULL_DATA_UNTIL - T) // HOUR  # the future was there to be read
    assert cut["candles_after_t"] == 0
    # The claim first: up to T, nothing a race stored depends on what came after T.
    assert cut["decisions"] == full["decisions"]  # orders, reasoning, confidence, snapshot hash, inputs
    assert cut["trades"] == full["trades"]
    assert cut["equity"] == full["equity"]
    assert cut["cycles"] == full["cycles"]
    # And the comparison means something: every agent decided every cycle, the ML agent on its model's answer.
    decisions = full["decisions"]
    assert len(decisions) == CYCLES * 7  # six baselines (the controls among them) and the ML agent
    ml = [row for row in decisions if row[-1]["provider"] == "custom_ml"]
    assert len(ml) == CYCLES
    assert {row[2] for row in ml} == {"ok"}, {row[5] for row in ml}
    assert all("direction-mlp" in row[3] for row in ml)
    assert len(full["trades"]) > 5
    assert max(row[1] for row in decisions) == T
    assert full["ml_replay"] == cut["ml_replay"] == (True, True)  # and each race's ML decision replays exactly
