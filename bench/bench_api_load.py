"""The API under load while the race writes cycles as fast as it can, on SQLite and on PostgreSQL.

Per database: the race alone for `--seconds` (cycles/s); then, for each client count (20 and 50) and each kind
of client, `--seconds` of keep-alive clients alternating `GET /api/leaderboard` and `GET /api/agents` while the
race keeps cycling, and the race alone again: requests/s, p50/p99 per route, errors (any status but 200/304, a
dropped connection, a race job that raised, any log line saying "database is locked"), and the cycles' rate
against the race alone just before and after (the race slows as its database grows). The race runs as
`make run --seconds-per-cycle 0` does: its statistics are computed by the worker beside the cycle loop.
Two kinds of client: `plain` (every GET wants the body: a 200 from the rendered-response cache) and
`revalidate` (If-None-Match with the last ETag, as the dashboard polls: mostly bodiless 304s).

The clients run in their own process, a small asyncio HTTP/1.1 client (httpx in 50 threads would measure its
own GIL). The API is served as `make run` serves it, from its own process (`shared.local_api_process`; in Azure
the Flex Consumption plan scales the HTTP functions apart from each timer function); `--api-in-race-process`
serves it from the race's own event loop instead, as `make run` did before, for comparison.
`--no-cache` turns the rendered-response cache off (Api__ResponseCacheMegabytes=0), for comparison.

Usage: scripts/with-services.sh .venv/bin/python bench/bench_api_load.py [--seconds 60] [--db sqlite|postgresql]
Exits 1 when any error was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_api import free_port, percentile

ROUTES = ("/api/leaderboard", "/api/agents")
KINDS = ("plain", "revalidate")
Results = dict[str, Any]


# ---- the load generator (its own process) -------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return status, headers, body
    return status, headers, b""


async def _one_client(
    index: int, port: int, deadline: float, revalidate: bool, interval_s: float, out: Results
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tags: dict[str, str] = {}
    turn = index
    next_send = time.perf_counter()
    try:
        while time.perf_counter() < deadline:
            if interval_s:  # paced: one request every interval_s, however fast the answers come
                next_send += interval_s
                await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
            route = ROUTES[turn % len(ROUTES)]
            turn += 1
            condition = f"If-None-Match: {tags[route]}\r\n" if revalidate and route in tags else ""
            request = f"GET {route} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{condition}\r\n".encode()
            started = time.perf_counter()
            try:
                writer.write(request)
                status, headers, body = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                out["errors"].append(f"{route}: {type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            out["times"][route].append(time.perf_counter() - started)
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            if status == 200 and "etag" in headers:
                tags[route] = headers["etag"]
            elif status != 304:
                out["errors"].append(f"{route}: {status} {body[:200]!r}")
    finally:
        writer.close()


def drive(port: int, clients: int, seconds: float, revalidate: bool, rate: float = 0) -> Results:
    """In the load process: `clients` connections, each alternating the routes until the time is up; at most
    `rate` requests a second in all (0: each as fast as the answers come)."""
    interval_s = clients / rate if rate else 0.0
    out: Results = {"times": {route: [] for route in ROUTES}, "statuses": {}, "errors": []}

    async def run() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_one_client(i, port, deadline, revalidate, interval_s, out) for i in range(clients)))

    asyncio.run(run())
    return out


# ---- the race and the server ----------------------------------------------------------------------------------


class Race:
    """Cycles back to back on the event loop it is started on, counting them, as `make run` races with no pause
    (`shared.local_race.run_simulated_cycles`): market data, decisions, equity, and the statistics asked of the
    background worker beside the loop (`shared.background_statistics`)."""

    def __init__(self, container: Any, *, statistics: bool = True) -> None:
        self.container = container
        self.statistics = statistics
        self.cycles = 0
        self.errors: list[str] = []
        self.stop = threading.Event()  # set from the phases' thread

    async def run(self) -> None:
        from shared.background_statistics import BackgroundStatistics

        c = self.container
        cycle = c.cycle_time(c.settings.market_data.replay_start)
        step = timedelta(minutes=c.settings.race.cycle_minutes)
        statistics = BackgroundStatistics(c) if self.statistics else None
        try:
            while not self.stop.is_set():
                try:
                    await asyncio.to_thread(c.run_market_data_job, cycle)
                    await c.run_agents_job_async(cycle)
                    await asyncio.to_thread(c.run_equity_job, cycle, refresh_statistics=False)
                    if statistics is not None:
                        statistics.request()
                except Exception as exc:  # counted: the bench fails on any
                    self.errors.append(f"cycle {cycle:%Y-%m-%d %H:%M}: {type(exc).__name__}: {exc}")
                self.cycles += 1
                cycle += step
        finally:
            if statistics is not None:
                await asyncio.to_thread(statistics.close)


class LockedDatabaseLog(logging.Handler):
    """Counts log records of WARNING and above, and those that say the database was locked."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.locked = 0
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (self.format(record) if record.exc_info else "")
        if "database is locked" in text:
            self.locked += 1
        if record.levelno >= logging.ERROR:
            self.records.append(f"{record.name}: {record.getMessage()[:200]}")


def settings_for(url: str, *, cache: bool, port: int) -> Any:
    from shared.config import Settings

    api = {"ResponseCacheMegabytes": 32 if cache else 0}
    return Settings(ConnectionStrings={"TradingDb": url}, Api=api, Local={"Host": "127.0.0.1", "Port": port})


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database: a file for SQLite, a new database on TEST_POSTGRES_URL's server (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-load-')) / 'race.db'}"
        return
    from sqlalchemy import make_url, text

    from shared.adapters.db.engine import make_engine

    admin_url = os.environ.get("TEST_POSTGRES_URL") or sys.exit("postgresql needs TEST_POSTGRES_URL")
    name = f"bench_load_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_for(port: int, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/race", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the API on port {port} did not answer")


def bench_database(kind: str, args: argparse.Namespace) -> tuple[list[str], int]:
    """Runs every phase on one database; returns the report lines and the number of errors."""
    import uvicorn

    from shared.api.app import create_app
    from shared.local_race import prepare

    log = LockedDatabaseLog()
    logging.getLogger().addHandler(log)
    report: list[str] = []
    errors = 0
    context = multiprocessing.get_context("spawn")
    with database(kind) as url:
        port = free_port()
        settings = settings_for(url, cache=not args.no_cache, port=port)
        container = prepare(settings, ml_unavailable="bench: no ML service")
        agents = len(container.queries.agent_summaries(starting_cash=container.settings.race.starting_cash))
        api_process = None
        server = None
        if not args.api_in_race_process:
            from shared.local_api_process import ApiProcess

            api_process = ApiProcess(container, dashboard=False, verbose=False)
            api_process.start()
        else:
            config = uvicorn.Config(create_app(lambda: container), host="127.0.0.1", port=port, log_level="warning")
            server = uvicorn.Server(config)
        race = Race(container, statistics=not args.no_statistics)

        def phases() -> None:
            try:
                measure()
            finally:  # however it ends, the race and the server stop
                race.stop.set()
                if server is not None:
                    server.should_exit = True

        def race_alone() -> float:
            before = race.cycles
            time.sleep(args.seconds)
            return (race.cycles - before) / args.seconds

        def measure() -> None:
            nonlocal errors
            wait_for(port)
            time.sleep(2)  # a few cycles in: the views have rows
            # The race slows as its database grows, so each loaded phase is compared with the race alone just
            # before and just after it (the mean of the two), not with one reading at the start.
            alone = race_alone()
            report.append(f"race alone: {alone:.1f} cycles/s ({agents} agents, every cycle persisted)")
            for clients in args.clients:
                for kind_of_client in args.kinds:
                    before = race.cycles
                    with context.Pool(1) as pool:  # a fresh load process per phase
                        revalidate = kind_of_client == "revalidate"
                        result = pool.apply(drive, (port, clients, args.seconds, revalidate, args.rate))
                    rate = (race.cycles - before) / args.seconds
                    after = race_alone()
                    reference = (alone + after) / 2
                    total = sum(len(times) for times in result["times"].values())
                    errors += len(result["errors"])
                    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(result["statuses"].items()))
                    report.append(
                        f"{clients} clients, {kind_of_client}: {total / args.seconds:,.0f} req/s ({statuses}), "
                        f"{len(result['errors'])} errors; cycles {rate:.1f}/s against {reference:.1f} alone "
                        f"({(rate / reference - 1) * 100:+.0f}%)"
                    )
                    for route, times in result["times"].items():
                        report.append(
                            f"    {route:18} {len(times) / args.seconds:7,.0f} req/s  p50 "
                            f"{percentile(times, 50) * 1000:6.1f} ms  p99 {percentile(times, 99) * 1000:6.1f} ms"
                        )
                    report.extend(f"    error: {line}" for line in result["errors"][:5])
                    report.append(f"race alone: {after:.1f} cycles/s")
                    alone = after

        async def run() -> None:
            own_loop = threading.Thread(target=asyncio.run, args=(race.run(),)) if args.race_loop == "own" else None
            if own_loop is not None:
                own_loop.start()
            race_task = asyncio.create_task(race.run()) if own_loop is None else None
            driver = asyncio.create_task(asyncio.to_thread(phases))
            if server is not None:
                await server.serve()
            await driver
            race.stop.set()
            if race_task is not None:
                await race_task
            if own_loop is not None:
                await asyncio.to_thread(own_loop.join)

        try:
            asyncio.run(run())
        finally:
            if api_process is not None:
                api_process.stop()
            if container.data_version is not None:
                container.data_version.close()
            container.uow_factory.engine.dispose()
    logging.getLogger().removeHandler(log)
    errors += len(race.errors) + log.locked + len(log.records)
    report.append(
        f"race errors: {len(race.errors)}; 'database is locked' log lines: {log.locked}; "
        f"error log lines: {len(log.records)}"
    )
    report.extend(f"    {line}" for line in (race.errors + log.records)[:5])
    return report, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--clients", type=lambda text: [int(n) for n in text.split(",")], default=[20, 50])
    parser.add_argument("--kinds", type=lambda text: text.split(","), default=list(KINDS), help="plain,revalidate")
    parser.add_argument("--rate", type=float, default=0, help="requests/s in all, paced (default: flat out)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), action="append", help="default: both")
    parser.add_argument(
        "--api-in-race-process", action="store_true", help="the API on the race's event loop, not in its own process"
    )
    parser.add_argument("--no-cache", action="store_true", help="Api__ResponseCacheMegabytes=0")
    parser.add_argument(
        "--no-statistics", action="store_true", help="no statistics worker beside the loop: only the cycles' own work"
    )
    parser.add_argument(
        "--race-loop",
        choices=("shared", "own"),
        default="shared",
        help="the race on the server's event loop (as `make run`) or on its own loop in its own thread",
    )
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval (seconds)")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    kinds = args.db or (["sqlite", "postgresql"] if os.environ.get("TEST_POSTGRES_URL") else ["sqlite"])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    total_errors = 0
    for kind in kinds:
        where = f"the race's process ({args.race_loop} event loop)" if args.api_in_race_process else "its own process"
        pace = f"paced at {args.rate:g} req/s" if args.rate else "clients flat out"
        cache = "off" if args.no_cache else "on"
        statistics = "off" if args.no_statistics else "beside the loop"
        print(f"== {kind}: {args.seconds:g} s a phase, {pace}, API in {where}, cache {cache}, statistics {statistics}")
        lines, errors = bench_database(kind, args)
        total_errors += errors
        print("\n".join(lines), flush=True)
    print(f"errors in all: {total_errors}")
    if total_errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
