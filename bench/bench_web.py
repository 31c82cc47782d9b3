"""The dashboard's bench (bench_web.mjs, in headless Chromium against a real local race), run by `make bench`.

The race is the local race's own, seeded with 15 more baselines (variants of the five defaults' strategies) so
that 20 agents trade: `bench_web.mjs` then fast-forwards it through a year of hourly cycles (8,760 marks each).
Usage: bench/bench_web.py [UNTIL] (default 2025-01-01: all of 2024)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.model import Agent

ROOT = Path(__file__).resolve().parent.parent
TRADING_AGENTS = 20


def extra_baselines() -> tuple[Agent, ...]:
    """Fifteen more baselines: momentum, mean reversion and random traders with other parameters."""
    from shared.services.seed import _baseline

    momentum = [
        _baseline(f"Momentum {h}h top {n}", "momentum", f"Momentum over {h} hours, top {n}.", lookback=h, top_n=n)
        for h, n in ((6, 1), (12, 2), (48, 2), (72, 3), (168, 2))
    ]
    reversion = [
        _baseline(f"Mean Reversion {w}h z{z}", "mean_reversion", f"Reversion over {w} hours.", window=w, entry_z=z)
        for w, z in ((12, "1.5"), (48, "2"), (72, "2.5"), (168, "2"), (24, "1.5"))
    ]
    random = [
        _baseline(f"Random Trader {s}", "random", "Random trades (seeded).", seed=s, trade_probability=p)
        for s, p in ((1, "0.1"), (2, "0.2"), (3, "0.5"), (4, "0.05"), (5, "0.3"))
    ]
    return (*momentum, *reversion, *random)


def prepare_race(path: Path) -> int:
    """The local race's database at `path`, migrated and seeded as `make run` seeds it, plus the extra agents.
    Returns how many agents trade."""
    sys.path.insert(0, str(ROOT))
    from shared.bootstrap import set_container
    from shared.config import ConnectionStrings, Settings
    from shared.local_race import prepare
    from shared.services.seed import seed

    settings = Settings(connection_strings=ConnectionStrings(trading_db=f"sqlite:///{path}"))
    container = prepare(settings)
    seed(uow_factory=container.uow_factory, rules=settings.race.rules(), agents=extra_baselines())
    with container.uow_factory() as uow:
        trading = len(uow.agents.list(active_only=True))
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
    set_container(None)
    return trading


def main() -> int:
    if shutil.which("node") is None:
        sys.exit("bench_web needs Node.js 18+ (and Chromium): see README")
    subprocess.run([str(ROOT / "scripts" / "build-web.sh")], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as folder:
        database = Path(folder) / "race.db"
        trading = prepare_race(database)
        print(f"race: {trading} agents trading (target {TRADING_AGENTS})", flush=True)
        env = {**os.environ, "BENCH_WEB_DB": str(database)}
        command = ["node", str(ROOT / "bench" / "bench_web.mjs"), *sys.argv[1:]]
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
