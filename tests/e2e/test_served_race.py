"""`make run` as a user runs it: `python -m shared.local_race` serving the API from its own process.

The race's cycles run in one process and the API in a second one on the same database (so requests never slow
the cycles). What a user relies on: the API answers while the race runs and follows every cycle, `/api/health`
reports what the race's process sees (its model providers' breakers), Ctrl-C stops both after the cycle in
flight, and the API never outlives a race that was killed.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import PROJECT_ROOT

STARTUP_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ServedRace:
    process: subprocess.Popen[str]
    url: str
    port: int
    log: Path

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=10, trust_env=False)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str, check: Any, timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the race exited ({self.process.returncode}):\n{self.output()}"
            try:
                found = check()
            except httpx.HTTPError:
                found = None
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"{what} not seen in {timeout_s:g} s:\n{self.output()}")


def start_race(tmp_path: Path, *args: str, **env: str) -> ServedRace:
    port = free_port()
    log = tmp_path / "race.log"
    environment = {
        **os.environ,
        "ConnectionStrings__TradingDb": f"sqlite:///{tmp_path / 'race.db'}",
        "Local__Host": "127.0.0.1",
        "Local__Port": str(port),
        **env,
    }
    command = [sys.executable, "-m", "shared.local_race", "--no-ml", "--seconds-per-cycle", "0.2", *args]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    race = ServedRace(process, f"http://127.0.0.1:{port}", port, log)
    race.wait_for("the API", lambda: race.get("/api/health").status_code == 200, STARTUP_S)
    return race


@pytest.fixture
def stop_at_the_end() -> Iterator[list[ServedRace]]:
    races: list[ServedRace] = []
    yield races
    for race in races:
        if race.process.poll() is None:
            race.process.kill()
            race.process.wait(10)


def cycles_run(race: ServedRace) -> int:
    return int(race.get("/api/race").json()["cycles"])


def test_the_api_follows_the_race_and_health_reports_the_race_process(
    tmp_path: Path, stop_at_the_end: list[ServedRace]
) -> None:
    dead_port = free_port()  # nothing listens: every call of the Llama agent fails at once
    race = start_race(
        tmp_path,
        Llama__ApiKey="gsk_fake_key_for_the_served_race",
        Llama__BaseUrl=f"http://127.0.0.1:{dead_port}/v1",
        Llama__MaxRetries="0",
        Llama__BreakerFailures="1",
    )
    stop_at_the_end.append(race)

    first = race.wait_for("a cycle", lambda: cycles_run(race))
    race.wait_for("more cycles", lambda: cycles_run(race) >= first + 3)
    leaderboard = race.get("/api/leaderboard")
    assert leaderboard.status_code == 200
    names = [item["name"] for item in leaderboard.json()["items"]]
    assert {"Always Hold", "Buy & Hold BTC", "Equal-Weight Buy & Hold"} <= set(names), names
    assert any("Llama" in name for name in names), names

    # Only the race's process calls the model: its open circuit is what health must show. The API process's
    # own clients were never called, so a health answer built from them would say "closed".
    def open_circuit() -> dict[str, Any] | None:
        health = race.get("/api/health").json()
        llama = [name for name in health["checks"] if name.startswith("llm:llama:")]
        if llama and all(health["checks"][name] == "unavailable" for name in llama):
            return dict(health)
        return None

    health = race.wait_for("the Llama agent's open circuit in /api/health", open_circuit, timeout_s=30)
    assert health["status"] == "degraded"
    assert health["checks"]["race"] == "ok"
    assert health["details"]["race"] == "racing"
    assert health["checks"]["database"] == "ok"
    llama = [name for name in health["checks"] if name.startswith("llm:llama:")]
    assert len(llama) == 2  # the two seeded Groq models, one breaker each
    assert all(health["details"][name] == "circuit open" for name in llama)
    assert "assets" in health["details"]["market_data"]  # the race's replay provider: what it holds

    race.process.send_signal(signal.SIGINT)
    assert race.process.wait(30) == 0, race.output()
    output = race.output()
    assert "Stopping after the cycle in flight" in output
    assert "Race stopped. Run `make run` again to resume from the database." in output
    assert "Traceback" not in output
    assert not listening(race.port), "the API process must stop with the race"

    # Stopped between cycles: the next run resumes the same race from the database.
    stored = cycles_run_at_stop(output)
    again = start_race(tmp_path, "--cycles", "1")
    stop_at_the_end.append(again)
    again.wait_for("the race over", lambda: "the race is over" in again.get("/api/health").json()["details"]["race"])
    assert again.get("/api/health").json()["details"]["race"] == "the race is over (1 cycle run); the API keeps serving"
    assert cycles_run(again) == stored + 1, "one more cycle after those stored: no gap, no double"
    again.process.send_signal(signal.SIGINT)
    assert again.process.wait(30) == 0, again.output()


def cycles_run_at_stop(output: str) -> int:
    """How many cycles the race had printed a progress line for (one line per cycle)."""
    return sum(1 for line in output.splitlines() if " UTC | decisions " in line)


def test_a_failed_request_is_one_line_in_the_console_and_the_api_never_outlives_a_killed_race(
    tmp_path: Path, stop_at_the_end: list[ServedRace]
) -> None:
    race = start_race(tmp_path)
    stop_at_the_end.append(race)
    race.wait_for("a cycle", lambda: cycles_run(race))

    # A request that fails in the API process (its table is gone) is one line with its request id between the
    # race's lines, as in the race's own process; the traceback is for --verbose and telemetry.
    with sqlite3.connect(tmp_path / "race.db") as database:
        database.execute("DROP TABLE agent_statistics")
    failed = race.get("/api/agents/1/stats")
    assert failed.status_code == 500
    assert failed.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    line = f"request GET /api/agents/1/stats failed: OperationalError [request {failed.headers['x-request-id']}]"
    race.wait_for("the failed request's line", lambda: line in race.output(), timeout_s=10)
    assert race.output().count(line) == 1
    assert "Traceback" not in race.output()

    race.process.kill()  # no clean-up code runs in the race's process
    race.process.wait(10)
    deadline = time.monotonic() + 15
    while listening(race.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not listening(race.port), "the API process kept serving after its race was killed"


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "shared.local_race", "--no-ml"],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "ConnectionStrings__TradingDb": f"sqlite:///{tmp_path / 'race.db'}",
                "Local__Host": "127.0.0.1",
                "Local__Port": str(port),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"error: 127.0.0.1:{port} is in use" in result.stderr
    assert "Local__Port" in result.stderr
    assert not (tmp_path / "race.db").exists(), "nothing was migrated or seeded"
