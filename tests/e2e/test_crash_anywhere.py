"""Crash anywhere: the local race's worker is killed with SIGKILL at seeded random moments and restarted, 32
times: in the live race's cycles (an ingest, the decisions, their writes, an equity mark), in a fast-forward
(the backtest engine: a transaction per week of cycles) and in a large market-data ingest (a day of candles per
transaction). After every restart: no decision without its trades and portfolio change, every portfolio
equals its starting cash plus its trades and fees, no gap or double in the cycles, the stored candles are
exactly the source's over their range (nothing half-ingested), and at the end the race resumes where it stood.
Prints kills survived / tried, per phase."""

from __future__ import annotations

import contextlib
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
from shared.adapters.db.models import CandleRow, CycleRow, DecisionRow, TradeRow
from tests.integration.db.test_exactly_once import _assert_portfolios_add_up

PHASES = {"cycle": 12, "backtest week": 12, "ingest": 8}  # kill points per phase, in a seeded order
# The ingest's window is short: 8 kills must not run it past the data's end on a fast machine (~3 ms a day).
SLEEP_S = {"cycle": (0.05, 0.9), "backtest week": (0.1, 1.5), "ingest": (0.01, 0.25)}  # from "ready" to the kill
SEED = 14
START = datetime(2024, 1, 8, tzinfo=UTC)  # a year of bundled candles ahead: room for every fast-forward
# One process imports the app once and forks a fresh worker per kill point: each worker wires its own container
# and database connections from scratch (as a restarted host does) and is the process that gets SIGKILL; the
# forking keeps 30+ restarts cheap (no interpreter start and imports each time).
ZYGOTE = """
import asyncio, os, sys, traceback
from datetime import datetime, timedelta, timezone
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import LocalRaceOptions, fast_forward, prepare, resume_time, run_simulated_cycles
import shared.adapters.agents.factory, shared.adapters.db.migrate, shared.adapters.db.queries  # what prepare uses
import shared.adapters.db.unit_of_work, shared.adapters.market_data.factory, shared.services.backtest
import shared.services.cycle, shared.services.ingest, shared.services.seed, shared.services.equity
url, start = sys.argv[1:3]
DATA_END = datetime(2024, 12, 30, tzinfo=timezone.utc)  # the bundled candles' last day


def work(phase, cycles):
    settings = Settings(connection_strings=ConnectionStrings(trading_db=url),
                        market_data=MarketDataSettings(replay_start=start))
    container = prepare(settings)
    print("ready", os.getpid(), flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the fast-forward's progress lines: nobody reads them
    if phase == "cycle":
        asyncio.run(run_simulated_cycles(container, LocalRaceOptions(0, cycles, False), asyncio.Event()))
    elif phase == "backtest week":
        fast_forward(container, resume_time(container) + timedelta(weeks=8))
    else:  # ingest ahead of the race from its latest candle on, a day (5 assets x 24 candles) per transaction,
        # until killed: a day takes milliseconds on a quiet machine, so a bounded ingest could end before its kill
        # (past the data's end the jobs find nothing new)
        with container.uow_factory() as uow:
            latest = [t for t in uow.candles.latest_open_times(["BTC"], "1h").values() if t is not None]
        now = max(latest, default=resume_time(container))  # never a gap: each ingest starts at the latest one
        day = 1
        while True:
            container.run_market_data_job(min(now + timedelta(days=day), DATA_END))
            day += 1


print("zygote", flush=True)
for line in sys.stdin:
    phase, cycles = line.rstrip("\\n").rsplit(" ", 1)
    pid = os.fork()
    if pid == 0:
        try:
            work(phase, int(cycles))
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    print("exited", os.waitstatus_to_exitcode(status), flush=True)
"""


class Workers:
    """Starts workers (forked by the zygote) and kills them."""

    def __init__(self, url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.zygote = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, url, START.isoformat()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self._line() == "zygote"

    def _line(self) -> str:
        assert self.zygote.stdout is not None
        return self.zygote.stdout.readline().strip()

    def start(self, phase: str, cycles: int = 1000) -> int:
        assert self.zygote.stdin is not None
        self.zygote.stdin.write(f"{phase} {cycles}\n")
        self.zygote.stdin.flush()
        ready, pid = self._line().split()
        assert ready == "ready"
        return int(pid)

    def kill(self, pid: int, phase: str) -> bool:
        """SIGKILL the worker; False when it had finished its work first (no kill then)."""
        with contextlib.suppress(ProcessLookupError):  # finished and reaped already
            os.kill(pid, signal.SIGKILL)
        code = int(self._line().removeprefix("exited "))
        allowed = (0, 1, -signal.SIGKILL) if phase == "backtest week" else (0, -signal.SIGKILL)
        assert code in allowed, f"{phase}: the worker failed ({code})"  # 1: a fast-forward with nothing left
        return code == -signal.SIGKILL

    def wait(self) -> int:
        return int(self._line().removeprefix("exited "))

    def close(self) -> None:
        assert self.zygote.stdin is not None
        self.zygote.stdin.close()
        self.zygote.wait(timeout=30)
        assert self.zygote.stdout is not None
        self.zygote.stdout.close()


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


def _check_candles(url: str) -> int:
    """Every symbol's stored candles are exactly the bundled source's over the stored range: an ingest is
    whole or absent. Returns how many are stored."""
    from shared.adapters.market_data.replay import ReplayMarketDataProvider
    from shared.domain.model import Asset

    source = ReplayMarketDataProvider()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            t = CandleRow.__table__.c
            stored = connection.execute(select(t.symbol, t.open_time).order_by(t.symbol, t.open_time)).all()
    finally:
        engine.dispose()
    by_symbol: dict[str, list[datetime]] = {}
    for symbol, open_time in stored:
        by_symbol.setdefault(symbol, []).append(
            open_time.replace(tzinfo=UTC) if open_time.tzinfo is None else open_time
        )
    for symbol, times in by_symbol.items():
        asset = Asset(symbol, symbol, symbol.lower())
        expected = source.fetch_candles([asset], start=times[0], end=times[-1] + timedelta(hours=1))
        assert times == [c.open_time for c in expected], symbol
    return len(stored)


def test_the_race_survives_sigkill_anywhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    rng = random.Random(SEED)
    order = [phase for phase, kills in PHASES.items() for _ in range(kills)]
    rng.shuffle(order)
    tried = dict.fromkeys(PHASES, 0)
    survived = dict.fromkeys(PHASES, 0)
    started = time.monotonic()
    workers = Workers(url)
    finished_first = 0
    finished_by_phase = dict.fromkeys(PHASES, 0)
    try:
        for phase in order:
            while True:  # until a kill lands in this phase (a worker may finish its work before it)
                pid = workers.start(phase)
                time.sleep(rng.uniform(*SLEEP_S[phase]))
                killed = workers.kill(pid, phase)
                _check(url)
                _check_candles(url)
                if killed:
                    break
                finished_first += 1
                finished_by_phase[phase] += 1
                assert finished_first <= 10, f"the workers keep finishing before their kill: {finished_by_phase}"
            tried[phase] += 1
            survived[phase] += 1
        before = _check(url)
        workers.start("cycle", 3)  # and the race resumes where it stood
        assert workers.wait() == 0
    finally:
        workers.close()
    after = _check(url)
    candles = _check_candles(url)
    assert len(after) in (len(before) + 2, len(before) + 3)  # + the cycle in flight, re-run
    report = ", ".join(f"{phase} {survived[phase]}/{tried[phase]}" for phase in PHASES)
    total = sum(tried.values())
    print(
        f"kills survived {sum(survived.values())}/{total} ({report}); {finished_first} workers finished before "
        f"their kill; {len(after)} cycles, {candles} candles, "
        f"{time.monotonic() - started:.0f} s"
    )
    assert survived == tried
    assert total >= 30
