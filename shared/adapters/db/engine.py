"""Engines for the three supported databases, created on demand (never at import time).

* SQLite (local default): the file's folder is created; WAL, NORMAL sync, foreign keys and a busy timeout are
  set on every connection; the dialect's `do_begin` emits BEGIN itself so SAVEPOINTs and transactional DDL
  work (the sqlite3 driver's legacy mode skips BEGIN for SELECT, DDL and SAVEPOINT). This is done without an
  engine `begin` event: any engine event makes SQLAlchemy dispatch events around every statement.
* PostgreSQL: a plain `postgresql://` URL means psycopg 3.
* Azure SQL (`mssql+pyodbc`): ODBC Driver 18 with `Encrypt=yes`, and Entra ID authentication with an access
  token of the app's managed identity (`DefaultAzureCredential` on a developer's machine) injected at connect
  time through `attrs_before={SQL_COPT_SS_ACCESS_TOKEN: ...}`: SQLAlchemy's documented `do_connect` recipe. No
  password exists anywhere; one in the URL is dropped. A URL that names its own `Authentication=` (e.g.
  `SqlPassword` for a local SQL Server container) is left to the driver. Small pool (a Functions instance runs
  a few invocations at once), pre-ping (serverless databases pause and drop idle connections), and recycling
  well within a token's lifetime; fast_executemany for bulk inserts.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
AZURE_SQL_DRIVER = "ODBC Driver 18 for SQL Server"
AZURE_SQL_TOKEN_SCOPE = "https://database.windows.net/.default"  # noqa: S105 (a scope, not a secret)
SQL_COPT_SS_ACCESS_TOKEN = 1256  # msodbcsql.h: the pre-connect attribute that carries an Entra ID access token
# Entra ID tokens live 60-90 minutes; a connection is recycled well before that (and before Azure SQL's idle cut).
AZURE_SQL_POOL = {"pool_size": 3, "max_overflow": 2, "pool_timeout": 30, "pool_recycle": 1800, "pool_pre_ping": True}
_CREDENTIAL_KEYS = re.compile(r"^\s*(uid|pwd|user id|password|trusted_connection)\s*=", re.IGNORECASE)
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
        options.update(AZURE_SQL_POOL)
        if parsed.get_driver_name() == "pyodbc":
            options["fast_executemany"] = True
            parsed = azure_sql_url(parsed)
    token_provider = engine_options.pop("token_provider", None)
    timeouts: tuple[int, int] | None = engine_options.pop("timeouts", None)
    if timeouts is not None:
        options["connect_args"] = timeout_connect_args(backend, *timeouts) | engine_options.pop("connect_args", {})
    options.update(engine_options)
    engine = create_engine(parsed, **options)
    if backend == "mssql" and timeouts is not None:
        _set_query_timeout(engine, timeouts[1])
    if backend == "postgresql" and timeouts is not None:  # a stopped server cancels nothing: see hang_guard
        from shared.adapters.db.hang_guard import install_hang_guard

        install_hang_guard(engine, connect_timeout_s=timeouts[0], statement_timeout_s=timeouts[1])
    if backend == "sqlite":
        _configure_sqlite(engine)
    elif backend == "mssql" and parsed.get_driver_name() == "pyodbc" and uses_access_token(parsed):
        if token_provider is None:
            from shared.adapters.identity import CachedAccessToken

            token_provider = CachedAccessToken(AZURE_SQL_TOKEN_SCOPE).get
        attach_access_token(engine, token_provider)
    return engine


def timeout_connect_args(backend: str, connect_timeout_s: int, statement_timeout_s: int) -> dict[str, Any]:
    """The driver's arguments bounding a connection attempt and each statement (`Database__...` settings).
    PostgreSQL enforces its statement and lock timeouts on the server; ODBC's query timeout is set per
    connection (`_set_query_timeout`); SQLite waits for a lock at most its busy timeout."""
    if backend == "postgresql":
        ms = statement_timeout_s * 1000
        return {"connect_timeout": connect_timeout_s, "options": f"-c statement_timeout={ms} -c lock_timeout={ms}"}
    if backend == "mssql":
        return {"timeout": connect_timeout_s}  # pyodbc: the login timeout
    return {}


def _set_query_timeout(engine: Engine, seconds: int) -> None:
    @event.listens_for(engine, "connect")
    def _query_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.timeout = seconds  # pyodbc: SQL_ATTR_QUERY_TIMEOUT, enforced by the driver


def azure_sql_url(url: URL) -> URL:
    """The URL with ODBC Driver 18 and encryption on unless it says otherwise (keys are case-insensitive)."""
    present = {key.lower() for key in url.query}
    defaults = {"driver": AZURE_SQL_DRIVER, "Encrypt": "yes", "TrustServerCertificate": "no"}
    additions = {key: value for key, value in defaults.items() if key.lower() not in present}
    return url.update_query_dict(additions) if additions else url


def uses_access_token(url: URL) -> bool:
    """Token authentication unless the URL picks its own `Authentication=` mode."""
    return not any(key.lower() == "authentication" for key in url.query)


def encode_access_token(token: str) -> bytes:
    """The ODBC driver's ACCESSTOKEN struct: a little-endian 4-byte length, then the token in UTF-16-LE."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)


def strip_credentials(connection_string: str) -> str:
    """The ODBC connection string without UID/PWD/Trusted_Connection (the driver refuses them with a token)."""
    parts = [part for part in connection_string.split(";") if part and not _CREDENTIAL_KEYS.match(part)]
    return ";".join(parts)


def attach_access_token(engine: Engine, token_provider: Callable[[], str]) -> None:
    """Give every new DBAPI connection a fresh-enough access token (SQLAlchemy's `do_connect` recipe)."""

    @event.listens_for(engine, "do_connect")
    def _provide_token(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if cargs and isinstance(cargs[0], str):
            if re.search(r"(^|;)\s*pwd\s*=", cargs[0], re.IGNORECASE):
                logger.warning("Azure SQL: the password in ConnectionStrings__TradingDb is ignored (token auth)")
            cargs[0] = strip_credentials(cargs[0])
        cparams.pop("password", None)
        cparams.pop("user", None)
        attrs = dict(cparams.get("attrs_before") or {})
        attrs[SQL_COPT_SS_ACCESS_TOKEN] = encode_access_token(token_provider())
        cparams["attrs_before"] = attrs


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
