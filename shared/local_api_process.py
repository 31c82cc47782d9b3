"""The local race's API (and dashboard) in a process of its own, beside the race's process.

Why a second process: in one process the API's requests and the race's cycles share one interpreter lock and
one event loop, and 20 busy clients slowed the cycles by 36-78% (`bench/bench_api_load.py`). Both processes
use the same database, and the API's rendered-response cache follows every write through the database's data
version, so nothing else has to cross between them except what only the race's process knows: its market data
provider's state and each model provider's circuit breaker. `/api/health` asks the race's process for those
over a pipe (`RaceChecksClient` here, `RaceChecksServer` there) and says so when it does not answer.

The race's process owns this one: Ctrl-C goes to the race (this process ignores SIGINT), which finishes the
cycle in flight and then closes the lifeline pipe; a closed lifeline (the race stopped, or was killed) stops
this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.console_logging import configure_console_logging

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.synchronize import Event

    from shared.bootstrap import Container
    from shared.config import Settings

logger = logging.getLogger(__name__)

Checks = dict[str, tuple[str, str | None]]
RACE_CHECKS_TIMEOUT_S = 5.0
"""How long `/api/health` waits for the race's process; past it, the race check is "unavailable". Longer than
the race's own slowest probe (ml_service's readiness, `ML_READY_TIMEOUT_S` = 2 s), so a slow ML service reads
as a slow ML service, not as a race that does not answer."""
STOP_TIMEOUT_S = 10.0
API_START_TIMEOUT_S = 60.0
NO_DASHBOARD_HINT = "install Node.js 18+ and run `make run` again, or `make web`"


@dataclass(frozen=True)
class ApiServerConfig:
    """What the API process needs (pickled to it): the race's own settings, as `prepare` left them (your own
    data's start, the ML service's address and key), and how to serve and log."""

    settings: Settings
    dashboard: bool
    verbose: bool


class RaceChecksServer:
    """In the race's process: answers each `RaceChecksClient` request with this process's dependency checks
    and a `race` check saying what the race is doing (`status`)."""

    def __init__(self, container: Container, connection: Connection) -> None:
        self._container, self._connection = container, connection
        self.status = "racing"

    def start(self) -> None:
        threading.Thread(target=self._serve, name="race-checks", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                request_id = self._connection.recv()
            except (EOFError, OSError):  # the API process has stopped
                return
            checks: Checks = {"race": ("ok", self.status)}
            try:
                checks.update(self._container.dependency_checks())
            except Exception:
                logger.exception("health check: the race's dependency checks failed")
                checks["dependencies"] = ("unavailable", "check failed")
            try:
                self._connection.send((request_id, checks))
            except (BrokenPipeError, OSError):
                return


class RaceChecksClient:
    """In the API process: `Container.dependency_checks_source`, the race's process's checks."""

    def __init__(self, connection: Connection, timeout_s: float = RACE_CHECKS_TIMEOUT_S) -> None:
        self._connection, self._timeout_s = connection, timeout_s
        self._lock = threading.Lock()
        self._last_id = 0

    def __call__(self) -> Checks:
        with self._lock:
            self._last_id += 1
            try:
                self._connection.send(self._last_id)
                deadline = time.monotonic() + self._timeout_s
                while (left := deadline - time.monotonic()) > 0 and self._connection.poll(left):
                    request_id, checks = self._connection.recv()
                    if request_id == self._last_id:  # an answer that came too late for an earlier call is dropped
                        return dict(checks)
            except (EOFError, OSError):
                return {"race": ("unavailable", "the race's process has stopped")}
        return {"race": ("unavailable", f"the race's process did not answer in {self._timeout_s:g} s")}


def serve_api(config: ApiServerConfig, checks: Connection, lifeline: Connection, ready: Event) -> None:
    """The API process's entry point (spawned): the same app as Azure on `Local__Host:Local__Port`."""
    import uvicorn

    from shared.api.app import create_app
    from shared.api.dashboard import with_dashboard
    from shared.bootstrap import bootstrap, set_container

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the race's: it stops this process when it is done
    configure_console_logging(config.settings.log_level, verbose=config.verbose)
    container = bootstrap(config.settings)
    container.dependency_checks_source = RaceChecksClient(checks)
    set_container(container)
    app = create_app(lambda: container)
    local = config.settings.local
    server = _server(
        uvicorn.Config(
            with_dashboard(app) if config.dashboard else app, host=local.host, port=local.port, log_level="warning"
        ),
        ready,
    )
    threading.Thread(target=_stop_when_the_lifeline_closes, args=(lifeline, server), daemon=True).start()
    server.run()  # returns once the lifeline closes; the process's exit closes its connections


def _stop_when_the_lifeline_closes(lifeline: Connection, server: Any) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()  # the race sends "stop", or its end closes when the race's process ends in any way
    server.should_exit = True


def _server(config: Any, ready: Event) -> Any:
    """uvicorn's Server, with `ready` set once it listens and without its own signal handlers (SIGTERM still
    ends the process; SIGINT is ignored, see `serve_api`). Built here: uvicorn is imported in the API process
    only."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready.set()

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    return Server(config)


class ApiProcess:
    """The race's handle on its API process: start it, wait until it listens, watch it, stop it."""

    def __init__(self, container: Container, *, dashboard: bool, verbose: bool) -> None:
        self._config = ApiServerConfig(settings=container.settings, dashboard=dashboard, verbose=verbose)
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and open engines
        self._ready = context.Event()
        self._checks_here, self._checks_there = context.Pipe()
        self._lifeline_there, self._lifeline_here = context.Pipe(duplex=False)
        self.checks = RaceChecksServer(container, self._checks_here)
        self._process = context.Process(
            target=serve_api,
            args=(self._config, self._checks_there, self._lifeline_there, self._ready),
            name="race-api",
            daemon=True,  # multiprocessing ends it at exit, should `stop` not be reached
        )

    def start(self) -> None:
        self._process.start()
        # Only the API process holds these ends now, so each pipe closes when either side ends.
        self._checks_there.close()
        self._lifeline_there.close()
        self.checks.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the server listens; False if the process exited first or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._ready.wait(0.1):
                return True
            if not self._process.is_alive():
                return False
        return False

    def stop(self) -> None:
        """Close the lifeline (uvicorn finishes the requests in flight), then terminate or kill if it lingers."""
        with contextlib.suppress(OSError):
            self._lifeline_here.send("stop")
        self._lifeline_here.close()
        self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._checks_here.close()


async def serve_api_beside(
    race: asyncio.Task[int], container: Container, stop: asyncio.Event, *, verbose: bool
) -> None:
    """Serve the API and dashboard from their own process while `race` (the cycle loop) runs, until `stop`
    (Ctrl-C), the race failing, or the API process ending; then let the cycle in flight finish and stop both."""
    from shared.api.dashboard import dashboard_available

    local = container.settings.local
    api = ApiProcess(container, dashboard=dashboard_available(), verbose=verbose)
    api.start()
    try:
        if not await asyncio.to_thread(api.wait_ready, API_START_TIMEOUT_S):
            print(f"error: the API did not start (exit code {api.exitcode}, see above); stopping", file=sys.stderr)
            return
        origin = f"http://{local.host}:{local.port}"
        if dashboard_available():
            print(f"Dashboard on {origin}/ ; API on {origin}/api (docs: /api/docs); Ctrl-C stops", flush=True)
        else:
            print(f"API on {origin}/api (docs: /api/docs); Ctrl-C stops", flush=True)
            print(f"No dashboard build ({NO_DASHBOARD_HINT})", flush=True)
        while not stop.is_set():  # the race may end first (its data or --cycles): the API keeps serving
            if race.done() and race.exception() is not None:
                break
            if race.done() and api.checks.status == "racing":
                count = race.result()
                api.checks.status = f"the race is over ({count} cycle{'s' * (count != 1)} run); the API keeps serving"
            if api.exitcode is not None:
                print(f"error: the API process exited (code {api.exitcode}); stopping the race", file=sys.stderr)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
    finally:
        stop.set()  # let the cycle in flight finish its transaction, then stop
        api.checks.status = "stopping"
        try:
            await race
        finally:
            await asyncio.to_thread(api.stop)
