"""Real databases for the persistence adapter's tests: every test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `TEST_POSTGRES_URL` (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1:54329/postgres),
which `make test` sets after starting a server. Each test gets its own fresh database: on PostgreSQL a copy of a
template migrated once per session (CREATE DATABASE ... TEMPLATE is fast), on SQLite a copy of a migrated file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url

from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import upgrade
from shared.adapters.db.queries import SqlAlchemyRaceQueries
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.bootstrap import Container
from tests.integration.db.pg_server import PostgresServer, throwaway_server

DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
RUN_ID = uuid.uuid4().hex[:8]


def _postgres_admin_url() -> URL:
    raw = os.environ.get("TEST_POSTGRES_URL")
    if not raw:
        pytest.fail(
            "TEST_POSTGRES_URL is not set: the database tests need a PostgreSQL server. Run them via `make test` "
            "(it starts one), or start one yourself and export "
            "TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres",
            pytrace=False,
        )
    return make_url(raw).set(drivername="postgresql+psycopg")


class PostgresDatabases:
    """Creates and drops uniquely named databases on the test server."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url
        self._admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")

    def create(self, name: str, *, template: str | None = None) -> URL:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return self.admin_url.set(database=name)

    def drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(_postgres_admin_url())
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: PostgresDatabases) -> Iterator[str]:
    name = f"race_template_{RUN_ID}"
    upgrade(postgres_databases.create(name))  # upgrade() disposes its engine: no session left on the template
    yield name
    postgres_databases.drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "race.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:  # fold the WAL into the file, so copying the file copies everything
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=DIALECTS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with no tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'race.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = f"race_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = databases.create(name)
    yield url.render_as_string(hide_password=False)
    databases.drop(name)


@pytest.fixture(params=DIALECTS)
def new_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes fresh databases migrated to the latest schema, all of one dialect (a test comparing two races
    needs two)."""
    made: list[str] = []

    def make() -> str:
        if request.param == "sqlite":
            path = tmp_path / ("race.db" if not made else f"race-{len(made)}.db")
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            made.append(str(path))
            return f"sqlite:///{path}"
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        template: str = request.getfixturevalue("postgres_template")
        name = f"race_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        url = databases.create(name, template=template)
        made.append(name)
        return url.render_as_string(hide_password=False)

    yield make
    if request.param != "sqlite":
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        for name in made:
            databases.drop(name)


@pytest.fixture
def db_url(new_db_url: Callable[[], str]) -> str:
    """A fresh database migrated to the latest schema."""
    return new_db_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> SqlAlchemyUnitOfWorkFactory:
    return SqlAlchemyUnitOfWorkFactory(engine)


@pytest.fixture
def queries(engine: Engine) -> SqlAlchemyRaceQueries:
    return SqlAlchemyRaceQueries(engine)


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop, start, freeze and thaw (never the shared one)."""
    with throwaway_server() as server:
        yield server


RACE_START = datetime(2024, 3, 1, tzinfo=UTC)  # the replay start of the races `new_race` makes


@pytest.fixture
def new_race(new_db_url: Callable[[], str]) -> Iterator[Callable[[], Container]]:
    """Makes races (migrated, seeded, replaying from RACE_START) on fresh databases of one dialect; their
    connections are closed at the end."""
    from shared.config import ConnectionStrings, MarketDataSettings, Settings
    from shared.local_race import prepare

    made: list[Container] = []

    def make() -> Container:
        settings = Settings(
            connection_strings=ConnectionStrings(trading_db=new_db_url()),
            market_data=MarketDataSettings(replay_start=RACE_START),
        )
        made.append(prepare(settings))
        return made[-1]

    yield make
    for container in made:
        container.uow_factory.engine.dispose()  # type: ignore[attr-defined]
