"""The rendered-response cache against a real database (SQLite and PostgreSQL): the data version moves after
every committed write (a cycle, an equity mark, a table no route knows yet, another process's write) and only
then, and the served answers follow it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from shared.adapters.db.data_version import DatabaseDataVersion, DataVersionUnavailable
from shared.adapters.db.engine import make_engine
from shared.api.app import create_app
from shared.bootstrap import Container, set_container
from shared.config import ApiSettings, ConnectionStrings, MarketDataSettings, Settings

pytestmark = pytest.mark.anyio
START = datetime(2024, 5, 6, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def race(db_url: str) -> Iterator[Container]:
    from shared.local_race import prepare

    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=db_url),
        market_data=MarketDataSettings(replay_start=START),
        api=ApiSettings(ResponseCacheMaxAgeSeconds=0),  # read the version on every request: exact
    )
    container = prepare(settings, ml_unavailable="test: no ML service")
    yield container
    assert container.data_version is not None
    container.data_version.close()
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
    set_container(None)


class CountingQueries:
    """The real read side, counting the leaderboard's renders."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.summaries = 0

    def agent_summaries(self, **kwargs: Any) -> Any:
        self.summaries += 1
        return self.inner.agent_summaries(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def client_of(container: Container) -> httpx.AsyncClient:
    app = create_app(lambda: container)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def run_cycle(container: Container, at: datetime, *, equity: bool = True) -> None:
    container.run_market_data_job(at)
    await container.run_agents_job_async(at)
    if equity:
        container.run_equity_job(at)


def test_the_stamp_moves_after_a_commit_by_another_connection_and_not_after_reads(db_url: str) -> None:
    engine, writer = make_engine(db_url), make_engine(db_url)
    version = DatabaseDataVersion(engine, max_age_s=0)
    try:
        before = version.current()
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM agents")).all()
        assert version.current() == before, "a read is not a change"
        with writer.connect() as connection:
            connection.execute(text("CREATE TABLE statistics_stand_in (n INTEGER)"))
            connection.commit()
        created = version.current()
        assert created != before
        with writer.connect() as connection:
            connection.execute(text("INSERT INTO statistics_stand_in VALUES (1)"))
            connection.rollback()
        if engine.dialect.name == "sqlite":  # PostgreSQL spent an xid on it: a harmless extra render
            assert version.current() == created, "a rolled-back write changes nothing"
        with writer.connect() as connection:
            connection.execute(text("INSERT INTO statistics_stand_in VALUES (1)"))
            connection.commit()
        assert version.current() != created
    finally:
        version.close()
        engine.dispose()
        writer.dispose()


def test_the_stamp_is_read_at_most_once_per_max_age(db_url: str) -> None:
    now = [100.0]
    engine, writer = make_engine(db_url), make_engine(db_url)
    version = DatabaseDataVersion(engine, max_age_s=5, clock=lambda: now[0])
    try:
        assert version.fresh() is None, "nothing read yet"
        first = version.current()
        assert version.fresh() == first
        with writer.begin() as connection:
            connection.execute(text("CREATE TABLE statistics_stand_in (n INTEGER)"))
        assert version.current() == first, "within max_age the last stamp stands"
        now[0] += 5
        assert version.fresh() is None
        assert version.current() != first
    finally:
        version.close()
        engine.dispose()
        writer.dispose()


async def test_a_cycle_and_then_its_equity_mark_each_change_the_served_answers(race: Container) -> None:
    counting = CountingQueries(race.queries)
    race.queries = counting  # type: ignore[assignment]
    async with client_of(race) as client:
        empty = await client.get("/api/leaderboard")
        race_before = await client.get("/api/race")
        assert (await client.get("/api/leaderboard")).content == empty.content
        assert counting.summaries == 1, "unchanged data: the stored answer"

        await run_cycle(race, START, equity=False)
        after_cycle = await client.get("/api/leaderboard")
        race_after = await client.get("/api/race")
        assert race_after.json()["cycles"] == race_before.json()["cycles"] + 1
        assert counting.summaries == 2

        race.run_equity_job(START)
        marked = await client.get("/api/leaderboard")
        assert marked.content != after_cycle.content, "the equity mark is in the next answer"
        assert all(item["equity"] is not None for item in marked.json()["items"])
        tag = marked.headers["etag"]
        assert (await client.get("/api/leaderboard", headers={"If-None-Match": tag})).status_code == 304
        assert counting.summaries == 3

        await run_cycle(race, START + timedelta(hours=1))
        moved = await client.get("/api/leaderboard", headers={"If-None-Match": tag})
        assert moved.status_code == 200
        assert moved.headers["etag"] != tag


async def test_a_write_to_a_table_no_route_reads_still_renders_again(race: Container, db_url: str) -> None:
    """A statistics table added later needs no change here: any committed write moves the version."""
    counting = CountingQueries(race.queries)
    race.queries = counting  # type: ignore[assignment]
    other_process: Engine = make_engine(db_url)
    try:
        async with client_of(race) as client:
            await client.get("/api/leaderboard")
            await client.get("/api/leaderboard")
            assert counting.summaries == 1
            with other_process.begin() as connection:
                connection.execute(text("CREATE TABLE race_statistics_stand_in (sharpe TEXT)"))
            with other_process.begin() as connection:
                connection.execute(text("INSERT INTO race_statistics_stand_in VALUES ('1.5')"))
            await client.get("/api/leaderboard")
            assert counting.summaries == 2
    finally:
        other_process.dispose()


def test_after_a_failed_read_callers_fail_fast_until_the_backoff_passes(tmp_path: Any) -> None:
    now = [100.0]
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'race.db'}")
    version = DatabaseDataVersion(unreachable, max_age_s=0, clock=lambda: now[0])
    try:
        with pytest.raises((OperationalError, sqlite3.OperationalError)):  # raw_connection: the driver's own
            version.current()
        with pytest.raises(DataVersionUnavailable):
            version.current()  # no second attempt to connect: a hanging server would hold every caller
        now[0] += 1
        with pytest.raises((OperationalError, sqlite3.OperationalError)):
            version.current()
    finally:
        unreachable.dispose()
