"""The local race's statistics worker: the loop never waits for a refresh, asks made during one fold into one,
and closing leaves figures that cover the last cycle."""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.background_statistics import BackgroundStatistics


class SlowRefresh:
    """A container whose refresh takes a while and records when each ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[float] = []
        self.running = threading.Event()

    def refresh_statistics(self) -> None:
        self.started.append(time.perf_counter())
        self.running.set()
        time.sleep(self.seconds)


def worker(container: SlowRefresh) -> BackgroundStatistics:
    container_any: Any = container
    return BackgroundStatistics(container_any)


def test_a_request_returns_at_once_while_the_refresh_runs_apart() -> None:
    container = SlowRefresh(0.3)
    statistics = worker(container)
    started = time.perf_counter()
    statistics.request()
    assert time.perf_counter() - started < 0.05, "the cycle loop must not wait for the statistics"
    assert container.running.wait(2), "the worker refreshes by itself"
    statistics.close()


def test_asks_during_a_refresh_fold_into_one_and_close_refreshes_last() -> None:
    container = SlowRefresh(0.3)
    statistics = worker(container)
    statistics.request()
    assert container.running.wait(2)
    for _ in range(10):  # ten cycles land while the first refresh runs
        statistics.request()
    time.sleep(0.7)  # the folded refresh runs once
    statistics.close()
    # the first refresh, one for the ten asks, and the final one of close(): never one per ask
    assert len(container.started) == 3, container.started


def test_close_without_any_request_still_brings_the_figures_up_to_date() -> None:
    container = SlowRefresh(0.0)
    statistics = worker(container)
    statistics.close()
    assert len(container.started) == 1
