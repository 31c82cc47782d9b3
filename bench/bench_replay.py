"""Full 2024 replay, persisted as in production, side by side with backtrader on the same strategies and data.

Ours is the backtest engine (`make backtest`): a fresh SQLite database (the local default), migrated and
seeded, then every hourly cycle of 2024 run with the services the timers use (ingest -> snapshot -> agents ->
rules -> equity), every candle, decision, trade, portfolio, equity mark and cycle record written, a week of
cycles per transaction. backtrader's side: the same five baselines over the same candles, in its own broker with
the same fee and slippage. Runs alternate (ours, theirs, ours, ...) so machine noise hits both; prints each run,
the medians, cycles per second and the ratio.

`--timer-path` also replays the year through the three timer jobs themselves (what `make run` and Azure do:
eight transactions a cycle, one per agent), and prints their database floor: the exact statements and
transactions that run sends, captured over a sample of cycles and sent again through the bare sqlite3 driver
on a copy of the database.

Usage: bench/bench_replay.py [--cycles N] [--repeat N] [--skip-backtrader] [--timer-path] [--floor-sample N]
                             [--profile FILE]

--profile runs the timer path under cProfile with the worker-thread hops made inline (the cycle's database work
runs in `asyncio.to_thread`, which a profiler on the main thread would not see) and writes the stats to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.bootstrap import Container
from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare

REPLAY_START = datetime(2024, 1, 1, tzinfo=UTC)
FULL_YEAR = 8_760


def _settings(database: Path) -> Settings:
    return Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{database}"),
        market_data=MarketDataSettings(replay_start=REPLAY_START),
    )


async def _replay(container: Container, start: datetime, cycles: int) -> None:
    """`cycles` hourly cycles from `start`: the three timer jobs, in the order the timers fire."""
    at = start
    for _ in range(cycles):
        container.run_market_data_job(at)
        await container.run_agents_job_async(at)
        container.run_equity_job(at)
        at += timedelta(hours=1)


def run_ours(cycles: int, profile: str | None = None) -> tuple[float, int, int]:
    """Seconds for `cycles` full cycles, plus decisions and trades written (read back from the database)."""
    settings = _settings(Path(tempfile.mkdtemp(prefix="bench-replay-")) / "race.db")
    container = prepare(settings)

    async def replay() -> None:
        await _replay(container, REPLAY_START, cycles)

    started = time.perf_counter()
    if profile:
        elapsed = _profiled(replay, profile)
    else:
        asyncio.run(replay())
        elapsed = time.perf_counter() - started
    summaries = container.queries.agent_summaries(starting_cash=settings.race.starting_cash)
    decisions = sum(container.queries.decisions(s.agent.id, limit=1, offset=0).total for s in summaries)
    trades = sum(s.trades for s in summaries)
    return elapsed, decisions, trades


def _profiled(replay: Callable[[], Coroutine[Any, Any, None]], path: str) -> float:
    import cProfile
    import pstats
    from unittest import mock

    async def inline(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    profiler = cProfile.Profile()
    started = time.perf_counter()
    with mock.patch("asyncio.to_thread", inline):
        profiler.runcall(asyncio.run, replay())
    elapsed = time.perf_counter() - started
    profiler.dump_stats(path)
    pstats.Stats(path).sort_stats("cumulative").print_stats(40)
    return elapsed


def database_floor(sample: int, warm_up: int = 50) -> float:
    """Seconds per cycle that SQLite alone spends on our statements (see the module docstring)."""
    from sqlalchemy import event

    database = Path(tempfile.mkdtemp(prefix="bench-replay-floor-")) / "race.db"
    container = prepare(_settings(database))
    asyncio.run(_replay(container, REPLAY_START, warm_up))
    engine = container.uow_factory.engine  # type: ignore[attr-defined]
    engine.dispose()  # every connection closed: the copy below is the whole database
    shutil.copyfile(database, database.with_name("copy.db"))

    sent: list[tuple[str, Any]] = []
    event.listen(engine, "begin", lambda _connection: sent.append(("BEGIN IMMEDIATE", None)))
    event.listen(engine, "commit", lambda _connection: sent.append(("COMMIT", None)))
    event.listen(engine, "rollback", lambda _connection: sent.append(("ROLLBACK", None)))
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append((args[2], args[3])))
    asyncio.run(_replay(container, REPLAY_START + timedelta(hours=warm_up), sample))
    engine.dispose()

    bare = sqlite3.connect(database.with_name("copy.db"), isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as the engine sets them
        bare.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    for statement, parameters in sent:
        if statement == "ROLLBACK":
            if bare.in_transaction:
                bare.execute(statement)
            continue
        if statement != "COMMIT" and statement != "BEGIN IMMEDIATE" and not bare.in_transaction:
            bare.execute("BEGIN IMMEDIATE")  # a read-only unit of work: SQLAlchemy began it lazily
        if parameters and isinstance(parameters[0], list | tuple):
            bare.executemany(statement, parameters)
        else:
            bare.execute(statement, parameters or ()).fetchall()
    elapsed = time.perf_counter() - started
    bare.close()
    return elapsed / sample


def run_backtest(cycles: int) -> tuple[float, int, int]:
    """Seconds for `cycles` backtested cycles on a fresh database, plus decisions and trades written."""
    settings = _settings(Path(tempfile.mkdtemp(prefix="bench-backtest-")) / "race.db")
    container = prepare(settings)
    started = time.perf_counter()
    report = asyncio.run(container.run_backtest(REPLAY_START, REPLAY_START + timedelta(hours=cycles)))
    elapsed = time.perf_counter() - started
    summaries = container.queries.agent_summaries(starting_cash=settings.race.starting_cash)
    decisions = sum(container.queries.decisions(s.agent.id, limit=1, offset=0).total for s in summaries)
    trades = sum(s.trades for s in summaries)
    assert (decisions, trades) == (report.decisions, report.trades), "the report must match what is stored"
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
    return elapsed, decisions, trades


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=FULL_YEAR)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (alternating); medians printed")
    parser.add_argument("--skip-backtrader", action="store_true")
    parser.add_argument("--timer-path", action="store_true", help="also replay through the timer jobs (slow)")
    parser.add_argument("--floor-sample", type=int, default=1_000, help="cycles captured for the database floor")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the timer path (thread hops inline) into FILE")
    args = parser.parse_args()
    if args.cycles < 1 or args.repeat < 1:
        parser.error("--cycles and --repeat must be at least 1")
    logging.disable(logging.INFO)

    ours: list[float] = []
    theirs: list[float] = []
    for run in range(1, args.repeat + 1):
        elapsed, decisions, trades = run_backtest(args.cycles)
        ours.append(elapsed)
        print(
            f"run {run} ours       : {args.cycles} cycles in {elapsed:6.2f} s = {args.cycles / elapsed:7.1f} cycles/s "
            f"({decisions} decisions, {trades} trades persisted)",
            flush=True,
        )
        if not args.skip_backtrader:
            from bench.backtrader_baselines import run_backtrader

            theirs.append(run_backtrader(args.cycles))
            print(
                f"run {run} backtrader : {args.cycles} bars in {theirs[-1]:6.2f} s = "
                f"{args.cycles / theirs[-1]:7.1f} bars/s (5 strategies x 5 feeds)",
                flush=True,
            )
    ours_median = statistics.median(ours)
    print(
        f"backtest   : median {ours_median:6.2f} s = {args.cycles / ours_median:7.1f} cycles/s "
        f"({ours_median / args.cycles * 1000:.2f} ms a cycle)"
    )
    if theirs:
        theirs_median = statistics.median(theirs)
        print(f"backtrader : median {theirs_median:6.2f} s = {args.cycles / theirs_median:7.1f} bars/s")
        ratios = ", ".join(f"{t / o:.2f}x" for o, t in zip(ours, theirs, strict=True))
        print(f"ratio      : ours is {theirs_median / ours_median:.2f}x backtrader's speed (runs: {ratios})")

    if not args.timer_path:
        return
    timer, decisions, trades = run_ours(args.cycles, args.profile)
    print(
        f"timer path : {args.cycles} cycles in {timer:6.2f} s = {args.cycles / timer:7.1f} cycles/s "
        f"({decisions} decisions, {trades} trades persisted; {timer / args.cycles * 1000:.2f} ms a cycle)"
    )
    floor = database_floor(args.floor_sample)
    print(
        f"db floor   : {floor * 1000:.2f} ms per cycle = {floor * args.cycles:6.2f} s for {args.cycles} cycles "
        "(the timer path's statements on the bare sqlite3 driver)"
    )


if __name__ == "__main__":
    main()
