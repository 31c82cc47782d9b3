"""Crash anywhere: the local race's worker is killed with SIGKILL at seeded random moments (in an ingest, a
cycle's decisions or writes, an equity mark) and restarted. After every restart: no decision without its
trades and portfolio change, every portfolio equals its starting cash plus its trades and fees, no gap or
double in the cycles, and the race resumes where it stood."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from shared.adapters.db.engine import make_engine
from shared.adapters.db.models import CycleRow, DecisionRow, TradeRow
from tests.integration.db.test_exactly_once import _assert_portfolios_add_up

KILLS = 30
SEED = 14
START = datetime(2024, 6, 3, tzinfo=UTC)
WORKER = """
import asyncio, sys
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, prepare, run_simulated_cycles
settings = Settings(connection_strings=ConnectionStrings(trading_db=sys.argv[1]),
                    market_data=MarketDataSettings(replay_start=sys.argv[2]))
container = prepare(settings)
print("ready", flush=True)
asyncio.run(run_simulated_cycles(container, LocalRaceOptions(0, int(sys.argv[3]), False), asyncio.Event()))
"""


def _worker(url: str, cycles: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, START.isoformat(), str(cycles)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _check(url: str) -> list[datetime]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            counted = select(TradeRow.decision_id, func.count().label("n")).group_by(TradeRow.decision_id).subquery()
            rows = connection.execute(
                select(DecisionRow.id, DecisionRow.trade_count, counted.c.n).outerjoin(
                    counted, counted.c.decision_id == DecisionRow.id
                )
            ).all()
            assert all(trade_count == (n or 0) for _, trade_count, n in rows)  # no decision without its trades
            cycles = sorted(connection.execute(select(CycleRow.cycle_time)).scalars())
            decided = sorted(set(connection.execute(select(DecisionRow.cycle_time)).scalars()))
    finally:
        engine.dispose()
    cycles = [c.replace(tzinfo=UTC) if c.tzinfo is None else c for c in cycles]
    decided = [c.replace(tzinfo=UTC) if c.tzinfo is None else c for c in decided]
    assert cycles == [START + timedelta(hours=i) for i in range(len(cycles))]  # no gap, no double
    assert set(decided) - set(cycles) <= ({cycles[-1] + timedelta(hours=1)} if cycles else {START})  # in flight
    _assert_portfolios_add_up(url)
    return cycles


def test_the_race_survives_sigkill_anywhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    rng = random.Random(SEED)
    survived = 0
    for _ in range(KILLS):
        worker = _worker(url, 1000)
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.1, 1.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        worker.stdout.close()
        _check(url)
        survived += 1
    before = _check(url)
    worker = _worker(url, 3)  # and the race resumes where it stood
    assert worker.wait(timeout=120) == 0
    assert worker.stdout is not None
    worker.stdout.close()
    after = _check(url)
    assert len(after) == len(before) + 3 or (len(after) == len(before) + 2)  # + the cycle in flight, re-run
    assert survived == KILLS
    print(f"kills survived {survived}/{KILLS}, cycles {len(after)}")
