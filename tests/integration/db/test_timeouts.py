"""Database calls are bounded: `Database__StatementTimeoutSeconds` cancels a statement on PostgreSQL, and the
connect timeout reaches every driver."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared.adapters.db.engine import make_engine, timeout_connect_args
from shared.adapters.db.retry import is_transient_db_error
from shared.config import Settings
from tests.integration.db.conftest import PostgresDatabases


@pytest.mark.postgres
def test_a_statement_past_the_timeout_fails_within_it(postgres_databases: PostgresDatabases) -> None:
    engine = make_engine(postgres_databases.admin_url, timeouts=(5, 1))
    try:
        started = time.monotonic()
        with engine.connect() as connection, pytest.raises(OperationalError, match="statement timeout") as caught:
            connection.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5
        assert is_transient_db_error(caught.value)  # the job is run again, as for an outage
    finally:
        engine.dispose()


def test_the_timeouts_come_from_the_settings() -> None:
    database = Settings(Database={"ConnectTimeoutSeconds": 3, "StatementTimeoutSeconds": 7}).database
    assert (database.connect_timeout_seconds, database.statement_timeout_seconds) == (3, 7)
    assert Settings().database.statement_timeout_seconds == 30
    assert timeout_connect_args("postgresql", 3, 7) == {
        "connect_timeout": 3,
        "options": "-c statement_timeout=7000 -c lock_timeout=7000",
    }
    assert timeout_connect_args("mssql", 3, 7) == {"timeout": 3}
    assert timeout_connect_args("sqlite", 3, 7) == {}
