"""Cycle wall time: agents decide concurrently, so a cycle costs about one model call, not the sum of them.

1. 20 agents whose fake model client sleeps 500 ms (target: <= 1.2 x 500 ms; sequential would be 10 s).
2. 20 baseline agents with no latency (target: under 1 s).
Both persist every decision, trade and portfolio on a fresh SQLite database, as in production. Medians of 5 cycles.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.adapters.agents.factory import AgentClientRegistry
from shared.adapters.db.migrate import upgrade
from shared.bootstrap import Container, bootstrap
from shared.config import ConnectionStrings, Settings
from shared.domain.model import Agent, AgentDecision
from shared.services.ports import AgentContext
from shared.services.seed import DEFAULT_BASELINE_AGENTS, seed

START = datetime(2024, 2, 1, tzinfo=UTC)
MODEL_LATENCY_S = 0.5
CYCLES = 5


class SleepingModel:
    """Stands in for a remote model: answers HOLD after a fixed latency."""

    async def decide(self, context: AgentContext) -> AgentDecision:
        await asyncio.sleep(MODEL_LATENCY_S)
        return AgentDecision(orders=(), reasoning="slept", confidence=0.5, latency_ms=MODEL_LATENCY_S * 1000)


def make_race(agents: tuple[Agent, ...]) -> Container:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    settings = Settings(connection_strings=ConnectionStrings(trading_db=f"sqlite:///{workdir / 'race.db'}"))
    upgrade(settings.database_url)
    container = bootstrap(settings)
    assert isinstance(container.agent_clients, AgentClientRegistry)
    container.agent_clients.register("bench_sleep", lambda agent, settings: SleepingModel())
    seed(uow_factory=container.uow_factory, rules=settings.race.rules(), agents=agents)
    container.run_market_data_job(START)
    return container


def time_cycles(container: Container) -> list[float]:
    async def run() -> list[float]:
        durations = []
        for i in range(CYCLES):
            started = time.perf_counter()
            report = await container.run_agents_job_async(START + timedelta(hours=i))
            durations.append(time.perf_counter() - started)
            assert report.decided == 20, report.as_dict()
        return durations

    return asyncio.run(run())


def main() -> None:
    logging.disable(logging.INFO)
    template = DEFAULT_BASELINE_AGENTS[0]
    sleepers = tuple(
        replace(template, name=f"Sleeper {i:02d}", provider="bench_sleep", model="sleep") for i in range(20)
    )
    baselines = tuple(
        replace(DEFAULT_BASELINE_AGENTS[i % len(DEFAULT_BASELINE_AGENTS)], name=f"Baseline {i:02d}") for i in range(20)
    )
    # Market data for the cycles must exist: ingest each hour before its cycle.
    slow = make_race(sleepers)
    for i in range(1, CYCLES):
        slow.run_market_data_job(START + timedelta(hours=i))
    fast = make_race(baselines)
    for i in range(1, CYCLES):
        fast.run_market_data_job(START + timedelta(hours=i))

    slow_times, fast_times = time_cycles(slow), time_cycles(fast)
    slow_median, fast_median = statistics.median(slow_times), statistics.median(fast_times)
    print(
        f"20 agents x {MODEL_LATENCY_S * 1000:.0f} ms model : median {slow_median * 1000:6.1f} ms per cycle "
        f"(max {max(slow_times) * 1000:.1f}); {slow_median / MODEL_LATENCY_S:.2f}x one call (target <= 1.2x), "
        f"sequential would be {20 * MODEL_LATENCY_S:.0f} s"
    )
    print(
        f"20 baselines, no latency  : median {fast_median * 1000:6.1f} ms per cycle "
        f"(max {max(fast_times) * 1000:.1f}) (target < 1000 ms)"
    )


if __name__ == "__main__":
    main()
