"""Full 2024 replay, persisted as in production, side by side with backtrader on the same strategies and data.

Our side: a fresh SQLite database (the local default), migrated and seeded; then for every hourly cycle of 2024
the three timer jobs run through the same services the Functions timers call (ingest -> agents -> equity), with
every decision, trade, portfolio and equity snapshot written. backtrader's side: the same five baselines over
the same candles, in its own broker with the same fee. Prints cycles per second and the ratio.

Usage: bench/bench_replay.py [--cycles N] [--skip-backtrader] [--profile FILE]

--profile runs our side under cProfile with the worker-thread hops made inline (the cycle's database work runs
in `asyncio.to_thread`, which a profiler on the main thread would not see) and writes the stats to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.config import ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare

REPLAY_START = datetime(2024, 1, 1, tzinfo=UTC)
FULL_YEAR = 8_760


def run_ours(cycles: int, profile: str | None = None) -> tuple[float, int, int]:
    """Seconds for `cycles` full cycles, plus decisions and trades written (read back from the database)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{workdir / 'race.db'}"),
        market_data=MarketDataSettings(replay_start=REPLAY_START),
    )
    container = prepare(settings)

    async def replay() -> None:
        at = REPLAY_START
        for _ in range(cycles):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            container.run_equity_job(at)
            at += timedelta(hours=1)

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=FULL_YEAR)
    parser.add_argument("--skip-backtrader", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="cProfile our side (thread hops inline) into FILE")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    ours, decisions, trades = run_ours(args.cycles, args.profile)
    print(
        f"ours       : {args.cycles} cycles in {ours:6.2f} s = {args.cycles / ours:7.1f} cycles/s "
        f"({decisions} decisions, {trades} trades persisted)"
    )
    if args.skip_backtrader:
        return
    from bench.backtrader_baselines import run_backtrader

    theirs = run_backtrader(args.cycles)
    print(
        f"backtrader : {args.cycles} bars in {theirs:6.2f} s = {args.cycles / theirs:7.1f} bars/s "
        "(5 strategies x 5 feeds)"
    )
    print(f"ratio      : ours is {theirs / ours:.2f}x backtrader's speed")


if __name__ == "__main__":
    main()
