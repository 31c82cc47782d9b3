"""Run the roster's backtest over each evaluation window, each in its own SQLite database, in parallel processes.

A window is raced exactly as `make backtest` races (`shared.local_race.prepare` migrates and seeds a fresh
database, then `Container.run_backtest`, the backtest engine of `shared.services.backtest`): same agents, same
rules, same market data path. The warm-up candles before a window's first cycle are ingested as the backtest
always does (its first ingest reaches back `MarketData__BackfillHours`), so no window sees a candle after its
cycles and none starts blind. Workers are spawned processes (`ProcessPoolExecutor`, spawn context): each builds
its own engine and provider, nothing is shared but the files they read.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from shared.evaluation.windows import Window

if TYPE_CHECKING:
    from shared.config import Settings


@dataclass(frozen=True, slots=True)
class WindowTask:
    """What a worker needs to race one window: plain values, so it pickles across a spawn."""

    window: Window
    database_path: str
    replay_dir: str | None
    replay_assets: str


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """One agent's result in one window: its equity marked at the window's last cycle, and its total return
    (equity / starting cash - 1) as exact decimal text."""

    agent_id: int
    name: str
    provider: str
    model: str
    equity: str
    equity_at: str
    total_return: str


@dataclass(frozen=True, slots=True)
class WindowResult:
    window: Window
    database_path: str
    cycles: int
    decisions: int
    trades: int
    rejections: int
    duration_s: float
    starting_cash: str
    agents: tuple[AgentOutcome, ...]
    excluded: tuple[tuple[str, str], ...]  # (agent name, why it did not race)


class EvaluationRunError(RuntimeError):
    """A window's backtest failed; the message names the window."""


def run_windows(
    tasks: Sequence[WindowTask], *, jobs: int, on_done: Callable[[WindowResult], None] | None = None
) -> list[WindowResult]:
    """Every task's result, in the tasks' order, from up to `jobs` spawned worker processes."""
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    context = multiprocessing.get_context("spawn")  # no forked copies of engines, threads or locks
    results: dict[int, WindowResult] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        futures = {pool.submit(run_window, task): index for index, task in enumerate(tasks)}
        for future, index in futures.items():
            result = future.result()
            results[index] = result
            if on_done is not None:
                on_done(result)
    return [results[index] for index in range(len(tasks))]


def run_window(task: WindowTask) -> WindowResult:
    """Race one window in a fresh database (the worker's entry point; also callable in-process)."""
    from shared.local_race import prepare
    from shared.services.leaderboard import leaderboard

    logging.getLogger().setLevel(logging.WARNING)
    settings = window_settings(task)
    container = prepare(settings)
    window = task.window
    cycle = timedelta(minutes=settings.race.cycle_minutes)
    try:
        report = asyncio.run(container.run_backtest(window.start, window.end))
    except Exception as exc:
        raise EvaluationRunError(f"window {window.label}: {type(exc).__name__}: {exc}") from exc
    last_cycle = window.start + (window.cycles(cycle) - 1) * cycle
    starting_cash = settings.race.starting_cash
    agents: list[AgentOutcome] = []
    excluded: list[tuple[str, str]] = []
    for row in leaderboard(container.queries, starting_cash=starting_cash):
        summary = row.summary
        agent = summary.agent
        if not agent.active:
            excluded.append((agent.name, agent.inactive_reason or "inactive"))
            continue
        if summary.equity is None or summary.equity_at != last_cycle:
            raise EvaluationRunError(
                f"window {window.label}: {agent.name} has no equity mark at the last cycle {last_cycle.isoformat()}"
            )
        agents.append(
            AgentOutcome(
                agent_id=agent.id,
                name=agent.name,
                provider=str(agent.provider),
                model=agent.model,
                equity=str(summary.equity),
                equity_at=_iso(summary.equity_at),
                total_return=str(total_return(summary.equity, starting_cash)),
            )
        )
    _dispose(container)
    return WindowResult(
        window=window,
        database_path=task.database_path,
        cycles=report.cycles,
        decisions=report.decisions,
        trades=report.trades,
        rejections=report.rejections,
        duration_s=report.duration_s,
        starting_cash=str(starting_cash),
        agents=tuple(sorted(agents, key=lambda a: a.agent_id)),
        excluded=tuple(sorted(excluded)),
    )


def total_return(equity: Decimal, starting_cash: Decimal) -> Decimal:
    """equity / starting cash - 1, to 12 decimal places (far below a cent on any race's cash)."""
    return (equity / starting_cash - 1).quantize(Decimal("1e-12"))


def window_settings(task: WindowTask) -> Settings:
    """The environment's settings (keys, endpoints, rules) with this window's database and market data."""
    from shared.config import ConnectionStrings, Settings

    base = Settings()
    market = base.market_data.model_copy(
        update={
            "provider": "replay",
            "replay_dir": Path(task.replay_dir) if task.replay_dir else None,
            "replay_assets": task.replay_assets,
        }
    )
    database = ConnectionStrings(TradingDb=f"sqlite:///{task.database_path}")
    return base.model_copy(update={"connection_strings": database, "market_data": market})


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def _dispose(container: object) -> None:
    """Close the window's engine: a worker races several windows, each on its own database file."""
    engine = getattr(getattr(container, "uow_factory", None), "engine", None)
    dispose = getattr(engine, "dispose", None)
    if dispose is not None:
        dispose()


def default_jobs() -> int:
    return os.cpu_count() or 1
