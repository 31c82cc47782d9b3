"""The backtest on real databases and the real 2024 candles: row for row what the timer jobs store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shared.adapters.db.models import (
    CandleRow,
    CycleRow,
    DecisionRow,
    EquitySnapshotRow,
    PortfolioRow,
    PositionRow,
    TradeRow,
)
from shared.bootstrap import Container
from shared.services.backtest import BacktestError
from tests.integration.db.conftest import RACE_START

START = RACE_START  # the replay start of `new_race` (conftest)
HOUR = timedelta(hours=1)

# Every stored column but ids, versions and wall-clock times (decided_at, started_at, ...).
COMPARED: list[tuple[Any, ...]] = [
    (CandleRow.symbol, CandleRow.interval, CandleRow.open_time, CandleRow.open, CandleRow.close, CandleRow.volume),
    (
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
        DecisionRow.portfolio_before,  # the replay inputs (0007): the same context, whichever path decided
        DecisionRow.model_settings,
        DecisionRow.race_settings,
    ),
    (
        TradeRow.agent_id,
        TradeRow.cycle_time,
        TradeRow.symbol,
        TradeRow.side,
        TradeRow.quantity,
        TradeRow.price,
        TradeRow.notional,
        TradeRow.fee,
    ),
    (PortfolioRow.agent_id, PortfolioRow.cash, PortfolioRow.fees_paid, PortfolioRow.trade_count),
    (PositionRow.agent_id, PositionRow.symbol, PositionRow.quantity, PositionRow.avg_cost),
    (
        EquitySnapshotRow.agent_id,
        EquitySnapshotRow.at,
        EquitySnapshotRow.equity,
        EquitySnapshotRow.cash,
        EquitySnapshotRow.peak_equity,
        EquitySnapshotRow.max_drawdown,
        EquitySnapshotRow.ordinal,
    ),
    (CycleRow.cycle_time, CycleRow.snapshot_sha256, CycleRow.agents, CycleRow.decisions, CycleRow.trades),
]


def timer_jobs(container: Container, first: datetime, cycles: int) -> None:
    async def run() -> None:
        for at in (first + i * HOUR for i in range(cycles)):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            container.run_equity_job(at)

    asyncio.run(run())


def stored(container: Container) -> list[list[tuple[Any, ...]]]:
    with container.uow_factory() as uow:
        return [
            [tuple(row) for row in uow.connection.execute(select(*columns).order_by(*columns[:5]))]
            for columns in COMPARED
        ]


def test_a_backtest_continuing_the_timer_jobs_stores_what_they_would_have(new_race: Callable[[], Container]) -> None:
    timed, tested = new_race(), new_race()
    timer_jobs(timed, START, 30)
    timer_jobs(tested, START, 6)  # the race ran live for six hours, then is fast-forwarded

    with pytest.raises(BacktestError, match=r"start at 2024-03-01T06:00:00\+00:00"):
        asyncio.run(tested.run_backtest(START + 5 * HOUR, START + 30 * HOUR))
    report = asyncio.run(tested.run_backtest(START + 6 * HOUR, START + 30 * HOUR, chunk_cycles=8))

    assert report.cycles == 24
    assert report.chunks == 3
    assert report.decisions == 24 * 6  # the six baselines (the ML agent sits out: no service configured)
    expected, actual = stored(timed), stored(tested)
    assert [len(rows) for rows in actual] == [len(rows) for rows in expected]
    assert actual == expected
    decisions, trades = actual[1], actual[2]
    assert len(trades) > 5
    assert {row[9] for row in decisions if row[1] >= START + 6 * HOUR} != set()  # snapshot hashes compared too
