"""Market-data ingest cost: CoinGecko calls per run and per minute, and the idempotent candle upsert.

1. A fresh database backfills a day of 1h candles for the 5 seeded assets from the local CoinGecko stand-in
   (tests/coingecko/standin.py, real wire format), then the market-data timer fires every 15 minutes for a
   simulated day. Targets: at most 5 calls per run, at most 30 calls in any minute. Also prints calls per day
   and per 30 days (the Demo plan allows 10,000 calls a month).
2. Upsert of 10,000 real candles (5 assets x 2,000 hours) on SQLite and, when TEST_POSTGRES_URL is set (as
   `make bench` does), PostgreSQL: first run (all inserts), second run of the same data (must write nothing),
   and a run where 1% of the closes changed (rewrites only those). Medians of 3 runs on fresh databases.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_ingest.py
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.domain.model import Candle
from shared.services.ingest import ingest_market_data
from shared.services.seed import DEFAULT_ASSETS
from tests.coingecko.helpers import FakeTime, make_provider
from tests.coingecko.standin import running_standin

START = datetime(2024, 3, 10, tzinfo=UTC)
UPSERT_CANDLES = 10_000
REPEATS = 3


def fresh_sqlite() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-ingest-')) / 'race.db'}"


def fresh_postgres(admin_url: str, name: str) -> str:
    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def migrated(url: str) -> SqlAlchemyUnitOfWorkFactory:
    upgrade(url)
    factory = SqlAlchemyUnitOfWorkFactory(make_engine(url))
    with factory() as uow:
        for asset in DEFAULT_ASSETS:
            uow.assets.upsert(asset)
        uow.commit()
    return factory


def bench_calls() -> None:
    for standin in running_standin(now=START):
        fake_time = FakeTime()
        provider = make_provider(standin, fake_time, CallsPerMinute=30)
        uow = migrated(fresh_sqlite())
        per_run: list[int] = []
        stored = 0
        runs = 1 + 24 * 4  # the day's backfill, then every 15 minutes for a day
        for i in range(runs):
            before = len(standin.requests)
            report = ingest_market_data(
                uow_factory=uow, provider=provider, now=standin.now, interval="1h", backfill=timedelta(hours=24)
            )
            assert report.errors == {}, report.errors
            stored += report.stored
            per_run.append(len(standin.requests) - before)
            if i == 0:
                print(f"backfill of a day, 5 assets : {per_run[0]} calls, {report.stored} candles stored")
            standin.now += timedelta(minutes=15)
            fake_time.now += 15 * 60
        # Runs are 15 minutes apart and a run's calls go out back to back: the busiest minute is the busiest run.
        day = sum(per_run[1:])
        print(
            f"timer every 15 min, 1 day  : max {max(per_run)} calls per run (target <= 5), "
            f"max {max(per_run)} calls in any minute (target <= 30; limiter set to 30/min)"
        )
        print(
            f"                             {day} calls a day, {day * 30:,} per 30 days (Demo plan: 10,000 a month); "
            f"{stored - per_run[0] * 24} hourly candles added after the backfill"
        )


def candles_for_upsert() -> list[Candle]:
    replay = ReplayMarketDataProvider()
    per_asset = UPSERT_CANDLES // len(DEFAULT_ASSETS)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    candles = replay.fetch_candles(DEFAULT_ASSETS, start=start, end=start + timedelta(hours=per_asset))
    assert len(candles) == UPSERT_CANDLES, len(candles)
    return candles


def timed_upsert(uow_factory: SqlAlchemyUnitOfWorkFactory, candles: list[Candle]) -> tuple[float, int]:
    started = time.perf_counter()
    with uow_factory() as uow:
        written = uow.candles.upsert(candles)
        uow.commit()
    return time.perf_counter() - started, written


def bench_upsert(label: str, make_url_: Callable[[], str]) -> None:
    candles = candles_for_upsert()
    changed = [replace(c, close=c.close + Decimal("0.01")) if i % 100 == 0 else c for i, c in enumerate(candles)]
    first, second, revised = [], [], []
    for _ in range(REPEATS):
        factory = migrated(make_url_())
        first.append(timed_upsert(factory, candles))
        second.append(timed_upsert(factory, candles))
        revised.append(timed_upsert(factory, changed))
    for name, runs in (("first run (inserts)", first), ("same data again", second), ("1% of closes changed", revised)):
        seconds = statistics.median(s for s, _ in runs)
        written = {w for _, w in runs}
        print(f"{label:10s} upsert {UPSERT_CANDLES:,} candles, {name:22s}: {seconds * 1000:8.1f} ms, written {written}")
    assert {w for _, w in second} == {0}, "a second run of the same data must write nothing"


def main() -> None:
    logging.disable(logging.WARNING)
    bench_calls()
    bench_upsert("SQLite", fresh_sqlite)
    admin = os.environ.get("TEST_POSTGRES_URL")
    if admin:
        bench_upsert("PostgreSQL", lambda: fresh_postgres(admin, "bench_ingest"))
    else:
        print("PostgreSQL: skipped (set TEST_POSTGRES_URL, or run `make bench`)")


if __name__ == "__main__":
    main()
