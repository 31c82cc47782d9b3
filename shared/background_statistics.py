"""The race statistics recomputed beside the local race's cycle loop rather than inside it.

A refresh reads every agent's marks, fills and decisions and runs the bootstrap: on a race of a year that is
seconds of work, which inside the loop would stretch every simulated cycle (two seconds each by default). Here
each landed cycle asks for a refresh; asks that arrive while one runs fold into the next, so the figures trail
the race by at most one computation and the race never waits for them. After each refresh the worker rests
twice as long as it took, so that on a race cycling flat out (`--seconds-per-cycle 0`) the statistics take at
most a third of the process's interpreter, not all the time between two cycles (measured: 45-55 cycles/s with
no rest, 160-190 with no statistics at all; `bench/bench_api_load.py`). The timer jobs in Azure need none of
this: there the equity job computes them in its own invocation, apart from the agents job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container

logger = logging.getLogger(__name__)

REST_FACTOR = 2.0
"""The rest after a refresh, as a multiple of the time it took."""


class BackgroundStatistics:
    def __init__(self, container: Container, *, rest_factor: float = REST_FACTOR) -> None:
        self._container = container
        self._rest_factor = rest_factor
        self._wanted = threading.Event()
        self._closed = threading.Event()  # ends a rest at once
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="race-statistics", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """New marks landed: refresh soon (one refresh for however many asks came meanwhile)."""
        self._wanted.set()

    def close(self) -> None:
        """Stop the worker, then bring the figures up to the last landed cycle, so a race that stops (or a
        test that ran N cycles) leaves statistics that cover all of it."""
        self._closing = True
        self._closed.set()
        self._wanted.set()
        self._thread.join()
        self._container.refresh_statistics()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closing:
                return
            self._wanted.clear()
            started = time.perf_counter()
            self._container.refresh_statistics()  # logs and swallows its own failures
            if self._closed.wait((time.perf_counter() - started) * self._rest_factor):
                return
