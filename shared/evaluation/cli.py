"""`python -m shared.evaluate` (`make evaluate`): the roster raced over K disjoint windows, one database and
one process each, and the distribution of every agent's rank, return and excess over the controls.

Output in `--out` (default build/evaluation/): evaluation.md (the tables, also printed), evaluation.json (every
number, per window too) and evaluation.png (box plots of return and rank per agent).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.config import PROJECT_ROOT
from shared.evaluation.runner import WindowResult, WindowTask, default_jobs, run_windows
from shared.evaluation.windows import DEFAULT_MIN_CYCLES, MONTHLY, Window, WindowError, parse_windows_spec

DEFAULT_OUT = PROJECT_ROOT / "build" / "evaluation"
BUNDLED_DATA = "the bundled 2024 Binance candles"


@dataclass(frozen=True, slots=True)
class EvaluationOptions:
    windows: str | int = MONTHLY
    jobs: int = 1
    out: Path = DEFAULT_OUT
    replay_dir: Path | None = None
    assets: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    min_cycles: int = DEFAULT_MIN_CYCLES
    keep_databases: bool = False


@dataclass(frozen=True, slots=True)
class EvaluationOutput:
    report: dict[str, Any]
    markdown: str
    files: dict[str, Path]
    wall_s: float


def plan(options: EvaluationOptions) -> tuple[list[Window], dict[str, Any]]:
    """The windows to race and the report's header, from the settings and the market data (whose files are
    read and checked here: a bad file fails before any window starts)."""
    from shared.adapters.market_data.factory import make_market_data_provider
    from shared.adapters.market_data.replay_setup import race_assets, replay_start
    from shared.config import Settings
    from shared.domain.cycles import floor_time
    from shared.domain.model import interval_delta
    from shared.evaluation.windows import split_windows

    settings = Settings()
    market = settings.market_data.model_copy(
        update={
            "provider": "replay",
            "replay_dir": options.replay_dir if options.replay_dir is not None else settings.market_data.replay_dir,
            "replay_assets": options.assets if options.assets is not None else settings.market_data.replay_assets,
        }
    )
    settings = settings.model_copy(update={"market_data": market})
    provider: Any = make_market_data_provider(settings)  # a replay provider: it has `coverage`
    symbols = [asset.symbol for asset in race_assets(settings, provider)]
    cycle = timedelta(minutes=settings.race.cycle_minutes)
    step = interval_delta(market.interval)
    coverage = [found for symbol in symbols if (found := provider.coverage(symbol)) is not None]
    if not coverage:
        raise WindowError(f"no candles for {', '.join(symbols)}")
    start = options.start or replay_start(settings, provider, symbols)
    # The last cycle is the one that sees the newest candle close (as `make backtest` stops there).
    data_end = floor_time(max(last for _first, last in coverage) + step, cycle) + cycle
    end = min(options.end, data_end) if options.end is not None else data_end
    windows = split_windows(start, end, options.windows, cycle=cycle, min_cycles=options.min_cycles)
    meta = {
        "data": str(market.replay_dir) if market.replay_dir is not None else BUNDLED_DATA,
        "replay_dir": str(market.replay_dir) if market.replay_dir is not None else None,
        "replay_assets": market.replay_assets,
        "assets": symbols,
        "interval": market.interval,
        "windows_spec": options.windows if isinstance(options.windows, str) else "equal",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "cycle_minutes": settings.race.cycle_minutes,
        "starting_cash": str(settings.race.starting_cash),
        "jobs": options.jobs,
        # Your own files: their gaps and zero-volume bars, as the run's output and /api/health report them.
        "data_quality": provider.data_quality() if hasattr(provider, "data_quality") else None,
        "data_quality_lines": provider.quality_lines() if hasattr(provider, "quality_lines") else [],
    }
    return windows, meta


def evaluate(options: EvaluationOptions, *, log: Any = None) -> EvaluationOutput:
    """Plan, race every window (in parallel processes), and write the report's files."""
    from shared.evaluation.plot import write_plot
    from shared.evaluation.report import build_report, markdown
    from shared.services.seed import CONTROL_MODELS

    began = time.perf_counter()
    windows, meta = plan(options)
    say = log or (lambda text: None)
    for line in meta.pop("data_quality_lines"):
        say(line)
    say(f"Evaluating {len(windows)} windows ({options.windows}) of {meta['data']} with {options.jobs} processes ...")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="evaluation-") as scratch:
        databases = out / "databases" if options.keep_databases else Path(scratch)
        databases.mkdir(parents=True, exist_ok=True)
        tasks = []
        for window in windows:
            path = databases / f"window-{window.index + 1:02d}-{window.label.replace('/', 'of')}.db"
            path.unlink(missing_ok=True)  # a kept database from an earlier run: each window starts fresh
            tasks.append(WindowTask(window, str(path), meta["replay_dir"], meta["replay_assets"]))

        def done(result: WindowResult) -> None:
            say(
                f"  window {result.window.label}: {result.cycles} cycles, {result.trades} trades "
                f"({result.duration_s:.1f}s backtest)"
            )

        results = run_windows(tasks, jobs=options.jobs, on_done=done)
    if not options.keep_databases:  # the scratch databases are gone: the report names none
        results = [replace(result, database_path="") for result in results]
    wall_s = time.perf_counter() - began
    report = build_report(results, control_models=CONTROL_MODELS, meta={**meta, "wall_s": round(wall_s, 3)})
    text = markdown(report)
    files = {"markdown": out / "evaluation.md", "json": out / "evaluation.json", "png": out / "evaluation.png"}
    files["markdown"].write_text(text, encoding="utf-8")
    files["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_plot(report, files["png"])
    return EvaluationOutput(report, text, files, wall_s)


def _utc(text: str) -> datetime:
    from shared.local_race import parse_until

    return parse_until(text)


def _windows(text: str) -> str | int:
    try:
        return parse_windows_spec(text)
    except WindowError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shared.evaluate",
        description="Race the roster over disjoint windows of the replay data, one database and process each, "
        "and report each agent's rank, return and excess over the controls across windows.",
    )
    parser.add_argument("--windows", type=_windows, default=MONTHLY, help="monthly (default), quarterly, or N")
    parser.add_argument("--jobs", type=_positive, default=default_jobs(), help="worker processes (default: cores)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default build/evaluation)")
    parser.add_argument("--replay-dir", type=Path, default=None, help="your candle files (MarketData__ReplayDir)")
    parser.add_argument("--assets", default=None, help="comma-separated symbols (MarketData__ReplayAssets)")
    parser.add_argument("--start", type=_utc, default=None, help="first cycle (UTC; default: the data's start)")
    parser.add_argument("--end", type=_utc, default=None, help="end, exclusive (UTC; default: the data's end)")
    parser.add_argument("--min-cycles", type=_positive, default=DEFAULT_MIN_CYCLES, help="shortest window allowed")
    parser.add_argument("--keep-databases", action="store_true", help="keep each window's SQLite file in --out")
    args = parser.parse_args(argv)
    options = EvaluationOptions(
        windows=args.windows,
        jobs=args.jobs,
        out=args.out,
        replay_dir=args.replay_dir,
        assets=args.assets,
        start=args.start,
        end=args.end,
        min_cycles=args.min_cycles,
        keep_databases=args.keep_databases,
    )
    from shared.adapters.market_data.factory import MarketDataProviderUnavailable
    from shared.adapters.market_data.replay import ReplayDataError
    from shared.evaluation.runner import EvaluationRunError

    try:
        output = evaluate(options, log=lambda text: print(text, flush=True))
    except EvaluationRunError as exc:  # a window's backtest failed: which one and why, no traceback
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except (WindowError, ReplayDataError, MarketDataProviderUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print()
    print(output.markdown, flush=True)
    print(f"Wrote {', '.join(str(path) for path in output.files.values())} in {output.wall_s:.1f}s", flush=True)
