"""The pipe between the local race's API process and the race's process: `/api/health` gets the race's own
checks, a late or missing answer is reported as such, and never mistaken for the answer to a later call."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest

from shared.adapters.health import ML_READY_TIMEOUT_S
from shared.local_api_process import RaceChecksClient, RaceChecksServer


class RaceContainer:
    """What the race's process answers with: its dependency checks, counted."""

    def __init__(
        self, checks: dict[str, Any] | None = None, error: Exception | None = None, seconds: float = 0.0
    ) -> None:
        self.checks, self.error, self.calls, self.seconds = checks or {}, error, 0, seconds

    def dependency_checks(self) -> dict[str, Any]:
        self.calls += 1
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        return self.checks


def pipe() -> tuple[Any, Any]:
    return multiprocessing.get_context("spawn").Pipe()


def test_health_gets_the_race_process_checks_and_what_the_race_is_doing() -> None:
    here, there = pipe()
    container = RaceContainer({"llm:groq:llama": ("unavailable", "circuit open"), "market_data": ("ok", "replay")})
    server = RaceChecksServer(container, there)  # type: ignore[arg-type]
    server.start()
    client = RaceChecksClient(here)

    assert client() == {
        "race": ("ok", "racing"),
        "llm:groq:llama": ("unavailable", "circuit open"),
        "market_data": ("ok", "replay"),
    }
    server.status = "the race is over (3 cycles run); the API keeps serving"
    assert client()["race"] == ("ok", "the race is over (3 cycles run); the API keeps serving")
    assert container.calls == 2  # asked each time: the API's own probe cache decides how often
    here.close()


def test_a_failing_check_in_the_race_process_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    here, there = pipe()
    RaceChecksServer(RaceContainer(error=RuntimeError("boom")), there).start()  # type: ignore[arg-type]

    checks = RaceChecksClient(here)()

    assert checks == {"race": ("ok", "racing"), "dependencies": ("unavailable", "check failed")}
    here.close()


def test_a_race_process_that_does_not_answer_is_unavailable_and_its_late_answer_is_dropped() -> None:
    here, there = pipe()
    client = RaceChecksClient(here, timeout_s=0.2)

    assert client() == {"race": ("unavailable", "the race's process did not answer in 0.2 s")}

    # The race's process catches up: it answers the first request late, then the second one.
    first = there.recv()
    there.send((first, {"race": ("ok", "stale")}))
    answered = threading.Event()

    def answer_the_next() -> None:
        second = there.recv()
        there.send((second, {"race": ("ok", "fresh")}))
        answered.set()

    threading.Thread(target=answer_the_next, daemon=True).start()
    assert client() == {"race": ("ok", "fresh")}
    assert answered.wait(2)
    here.close()
    there.close()


def test_a_stopped_race_process_is_unavailable() -> None:
    here, there = pipe()
    there.close()

    assert RaceChecksClient(here)() == {"race": ("unavailable", "the race's process has stopped")}


def test_a_race_waiting_on_its_slowest_probe_still_answers_in_time() -> None:
    """The race's checks include ml_service's readiness probe, which may take its whole timeout and more: that answer
    must still arrive, saying the ML service is slow, not that the race does not answer."""
    here, there = pipe()
    slow = RaceContainer(
        {"ml_service": ("unavailable", "not reachable (ReadTimeout)")}, seconds=ML_READY_TIMEOUT_S + 0.5
    )
    RaceChecksServer(slow, there).start()  # type: ignore[arg-type]

    checks = RaceChecksClient(here)()  # the default timeout, as the API process uses it

    assert checks == {"race": ("ok", "racing"), "ml_service": ("unavailable", "not reachable (ReadTimeout)")}
    here.close()
