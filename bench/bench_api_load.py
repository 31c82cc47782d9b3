"""The API under load while the race writes cycles as fast as it can, in one process (as `make run` serves it).

Phase 0: the race alone (cycles per second). Then 20 and 50 concurrent keep-alive clients on
`GET /api/leaderboard` and `GET /api/agents` for `--seconds` each while the race keeps cycling: requests per
second, p50/p99 per route, errors (any non-200/304, e.g. "database is locked" as a 500), and the cycles' rate
against phase 0. `--etag` makes the clients revalidate with If-None-Match (a poller's 304 path).
The load runs in a separate process, so its threads do not share the server's interpreter.

Usage: bench/bench_api_load.py [--seconds 60] [--etag] [--postgres]   (--postgres uses TEST_POSTGRES_URL)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx

from bench.bench_api import free_port, percentile

ROUTES = ("/api/leaderboard", "/api/agents")


def drive(base: str, clients: int, seconds: float, etag: bool) -> dict[str, tuple[list[float], int]]:
    """In the load process: `clients` threads, each alternating the routes until the time is up."""
    deadline = time.perf_counter() + seconds

    def one_client(index: int) -> dict[str, tuple[list[float], int]]:
        out: dict[str, tuple[list[float], int]] = {route: ([], 0) for route in ROUTES}
        tags: dict[str, str] = {}
        with httpx.Client(base_url=base, timeout=30) as client:
            i = index
            while time.perf_counter() < deadline:
                route = ROUTES[i % len(ROUTES)]
                i += 1
                headers = {"if-none-match": tags[route]} if etag and route in tags else {}
                started = time.perf_counter()
                try:
                    response = client.get(route, headers=headers)
                    ok = response.status_code in (200, 304)
                    if response.status_code == 200 and "etag" in response.headers:
                        tags[route] = response.headers["etag"]
                except httpx.HTTPError:
                    ok = False
                times, errors = out[route]
                times.append(time.perf_counter() - started)
                out[route] = (times, errors + (0 if ok else 1))
        return out

    merged: dict[str, tuple[list[float], int]] = {route: ([], 0) for route in ROUTES}
    with ThreadPoolExecutor(clients) as pool:
        for result in pool.map(one_client, range(clients)):
            for route, (times, errors) in result.items():
                merged[route] = (merged[route][0] + times, merged[route][1] + errors)
    return merged


class Race:
    """Cycles back to back (market data, decisions, equity) in the server's event loop, counting them."""

    def __init__(self, container: object) -> None:
        self.container = container
        self.cycles = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        c = self.container
        cycle = c.cycle_time(c.settings.market_data.replay_start)  # type: ignore[attr-defined]
        step = timedelta(minutes=c.settings.race.cycle_minutes)  # type: ignore[attr-defined]
        while not self.stop.is_set():
            await asyncio.to_thread(c.run_market_data_job, cycle)  # type: ignore[attr-defined]
            await c.run_agents_job_async(cycle)  # type: ignore[attr-defined]
            await asyncio.to_thread(c.run_equity_job, cycle)  # type: ignore[attr-defined]
            self.cycles += 1
            cycle += step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--etag", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    import uvicorn

    from shared.api.app import create_app
    from shared.config import Settings
    from shared.local_race import prepare

    if args.postgres:
        url = os.environ.get("TEST_POSTGRES_URL") or sys.exit("--postgres needs TEST_POSTGRES_URL")
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-load-')) / 'race.db'}"
    container = prepare(Settings(ConnectionStrings={"TradingDb": url}), ml_unavailable="bench: no ML service")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(create_app(lambda: container), port=port, log_level="warning"))
    race = Race(container)
    report: list[str] = []

    def phases() -> None:
        while not server.started:
            time.sleep(0.05)
        for _ in range(5):  # warm up: a few cycles so the views have rows
            httpx.get(f"{base}/api/leaderboard")
        before = race.cycles
        time.sleep(args.seconds)
        alone = (race.cycles - before) / args.seconds
        report.append(f"race alone: {alone:.2f} cycles/s")
        context = multiprocessing.get_context("spawn")
        for clients in (20, 50):
            before = race.cycles
            with context.Pool(1) as pool:
                results = pool.apply(drive, (base, clients, args.seconds, args.etag))
            rate = (race.cycles - before) / args.seconds
            total = sum(len(times) for times, _ in results.values())
            errors = sum(errors for _, errors in results.values())
            report.append(
                f"{clients} clients: {total / args.seconds:.0f} req/s, {errors} errors; cycles {rate:.2f}/s "
                f"({(rate / alone - 1) * 100:+.0f}% vs alone)"
                if alone
                else f"{clients} clients: {total} requests"
            )
            for route, (times, errs) in results.items():
                report.append(
                    f"  {route}: {len(times) / args.seconds:.0f} req/s p50 {percentile(times, 50) * 1000:.1f} ms "
                    f"p99 {percentile(times, 99) * 1000:.1f} ms errors {errs}"
                )
        race.stop.set()
        server.should_exit = True

    async def serve() -> None:
        race_task = asyncio.create_task(race.run())
        threading.Thread(target=phases, daemon=True).start()
        await server.serve()
        race.stop.set()
        await race_task

    asyncio.run(serve())
    print(f"database: {'postgresql' if args.postgres else 'sqlite'}; etag revalidation: {args.etag}")
    print("\n".join(report))


if __name__ == "__main__":
    main()
