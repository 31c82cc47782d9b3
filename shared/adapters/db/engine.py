"""Engines for the three supported databases, created on demand (never at import time).

* SQLite (local default): the file's folder is created; WAL, NORMAL sync, foreign keys and a busy timeout are
  set on every connection; the dialect's `do_begin` emits BEGIN itself so SAVEPOINTs and transactional DDL
  work (the sqlite3 driver's legacy mode skips BEGIN for SELECT, DDL and SAVEPOINT). This is done without an
  engine `begin` event: any engine event makes SQLAlchemy dispatch events around every statement.
* PostgreSQL: a plain `postgresql://` URL means psycopg 3.
* Azure SQL (`mssql+pyodbc`): pre-ping (serverless databases pause and drop idle connections) and
  fast_executemany for bulk inserts. ODBC Driver 18 authenticates with a managed identity through
  `Authentication=ActiveDirectoryMsi` in the URL's query, so no token plumbing lives here.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Key in a pooled connection's `info`, read (once) by the SQLite BEGIN: write transactions take the write lock
# up front, so two writers never both read a snapshot and then fail to upgrade it (SQLITE_BUSY_SNAPSHOT
# ignores the timeout). See `set_sqlite_begin_mode`.
SQLITE_BEGIN_MODE = "sqlite_begin_mode"
_SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE")


def normalize_database_url(url: str | URL) -> URL:
    """The URL with a driver chosen where the configuration names only the database kind."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "mssql":
        parsed = parsed.set(drivername="mssql+pyodbc")
    return parsed


def make_engine(url: str | URL, **engine_options: Any) -> Engine:
    """An engine for `url`, tuned for its dialect. Extra keyword arguments go to `create_engine`."""
    parsed = normalize_database_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"json_serializer": dumps_json}
    if backend == "sqlite":
        _create_sqlite_folder(parsed)
    elif backend == "postgresql":
        options["pool_pre_ping"] = True
    elif backend == "mssql":
        options["pool_pre_ping"] = True
        options["pool_recycle"] = 1800  # below Azure SQL's idle connection timeout
        if parsed.get_driver_name() == "pyodbc":
            options["fast_executemany"] = True
    options.update(engine_options)
    engine = create_engine(parsed, **options)
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def dumps_json(value: Any) -> str:
    """JSON for JSON columns: Decimals as strings (exact), datetimes as ISO-8601, anything else refused."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _create_sqlite_folder(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("mode") == "memory":
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see `_on_begin`)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    def _do_begin(dbapi_connection: Any) -> None:
        # `dbapi_connection` is the pool's proxy: its `info` lives as long as the DBAPI connection.
        mode = dbapi_connection.info.pop(SQLITE_BEGIN_MODE, "DEFERRED")
        dbapi_connection.execute(f"BEGIN {mode}")

    # Per engine (each engine has its own dialect instance), replacing pysqlite's no-op.
    engine.dialect.do_begin = _do_begin  # type: ignore[method-assign]


def set_sqlite_begin_mode(connection: Connection, mode: str) -> None:
    """Make the next transaction that `connection` begins on SQLite start with `BEGIN <mode>` (one-shot).
    Call it before the connection's first statement. Other dialects ignore it."""
    if mode not in _SQLITE_BEGIN_MODES:
        raise ValueError(f"unknown SQLite begin mode {mode!r}")
    if connection.dialect.name == "sqlite":
        connection.connection.info[SQLITE_BEGIN_MODE] = mode
