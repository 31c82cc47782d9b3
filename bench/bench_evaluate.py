"""`make evaluate` over the 12 monthly windows of the bundled 2024 data: the six baselines (the controls among
them), wall time with one worker process and with every core, and the speed-up.

Each run is the whole command: planning, spawning the workers, each window's migration, seeding, backtest and
leaderboard read, and the report with its PNG. The network agents sit out (no endpoint configured here).
Usage: .venv/bin/python bench/bench_evaluate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.evaluation.cli import EvaluationOptions, evaluate


def run(jobs: int) -> tuple[float, float, int]:
    """Wall seconds of one evaluation, the sum of its windows' backtest seconds, and its cycles."""
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as out:
        output = evaluate(EvaluationOptions(windows="monthly", jobs=jobs, out=Path(out)))
    windows = output.report["windows"]
    return output.wall_s, sum(w["backtest_s"] for w in windows), sum(w["cycles"] for w in windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting (the median is printed)")
    args = parser.parse_args()
    for name in ("Llama__ApiKey", "OpenAI__ApiKey", "AzureOpenAI__ApiKey", "CustomMlAgent__BaseUrl"):
        os.environ.pop(name, None)
    cores = os.cpu_count() or 1
    print(f"make evaluate, 12 monthly windows of the bundled 2024 candles, 6 baselines; {cores} cores")
    medians: dict[int, float] = {}
    for jobs in dict.fromkeys((1, cores)):
        runs = [run(jobs) for _ in range(args.repeat)]
        walls = [wall for wall, _backtest, _cycles in runs]
        medians[jobs] = statistics.median(walls)
        backtest = statistics.median(b for _wall, b, _cycles in runs)
        cycles = runs[0][2]
        print(
            f"--jobs {jobs:>2}: wall median {medians[jobs]:.1f}s (runs: {', '.join(f'{w:.1f}' for w in walls)}); "
            f"{cycles} cycles, the windows' backtests alone {backtest:.1f}s"
        )
    if cores > 1:
        print(f"speed-up with {cores} processes: {medians[1] / medians[cores]:.2f}x")


if __name__ == "__main__":
    main()
