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


def worker(container: SlowRefresh, rest_factor: float = 0.0) -> BackgroundStatistics:
    container_any: Any = container
    return BackgroundStatistics(container_any, rest_factor=rest_factor)


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


def test_after_a_refresh_the_worker_rests_twice_as_long_as_it_took_and_close_cuts_the_rest_short() -> None:
    container = SlowRefresh(0.2)
    statistics = worker(container, rest_factor=2.0)
    statistics.request()
    assert container.running.wait(2)
    statistics.request()  # a cycle lands during the refresh: the next one waits for the rest
    deadline = time.perf_counter() + 3
    while len(container.started) < 2 and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert len(container.started) == 2
    gap = container.started[1] - container.started[0]
    assert gap >= 0.2 + 0.4 - 0.02, f"the second refresh began {gap:.3f} s after the first"
    assert gap < 0.2 + 0.4 + 0.3

    statistics.request()
    time.sleep(0.25)  # the second refresh is over: the worker rests
    closing = time.perf_counter()
    statistics.close()
    assert time.perf_counter() - closing < 0.2 + 0.15, "close waits for no rest, only for the final refresh"
    assert len(container.started) == 3  # the final refresh of close(), not the one the rest postponed
