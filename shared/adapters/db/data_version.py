"""A stamp of everything committed to the database, cheap enough to read often: what the API's rendered-response
cache keys its answers by (`shared.api.response_cache`).

It must change after any committed write, by any process (the timers may run on another host), to any table
(a new cycle, an equity mark, a statistics table added later), and it must never claim data newer than it has:
an answer rendered after the stamp was read holds at least what was committed when it was read.
* SQLite: `PRAGMA data_version` on a connection of its own, which changes whenever another connection commits.
* PostgreSQL: the current snapshot (`xmin:xmax:in-progress xids`): two equal snapshots see the same
  committed transactions, and only writing transactions get an xid, so reads never move it.
* Other databases (Azure SQL): no such stamp without extra rights, so the stamp is a time bucket: an answer
  is reused for at most `max_age_s`.
The stamp is read at most once every `max_age_s` (0: on every call), so an answer can lag a write by that long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

Clock = Callable[[], float]
FAILURE_BACKOFF_S = 1.0  # after a failed read, callers fail fast this long (or max_age_s) instead of queueing


class DataVersionUnavailable(Exception):
    """The last read of the stamp failed moments ago; not tried again yet."""


class DatabaseDataVersion:
    """`current()` reads the stamp when the last read is older than `max_age_s`; `fresh()` answers without
    touching the database (None when a read is due), for callers on an event loop."""

    def __init__(self, engine: Engine, *, max_age_s: float, clock: Clock = time.monotonic) -> None:
        if max_age_s < 0:
            raise ValueError("max_age_s must be 0 or more")
        self.max_age_s = max_age_s
        self._clock = clock
        self._engine = engine
        self._read_stamp: Callable[[], str] | None = None  # connects on first use, not when wired
        self._lock = threading.Lock()
        self._stamp: str | None = None
        self._read_at = float("-inf")
        self._failed_at = float("-inf")

    def fresh(self) -> str | None:
        stamp, read_at = self._stamp, self._read_at
        return stamp if self._clock() - read_at < self.max_age_s else None

    def current(self) -> str:
        with self._lock:  # one reader at a time; the others take what it read
            stamp = self.fresh()
            if stamp is None:
                read_at = self._clock()
                # A database that hangs would otherwise hold every request here, one connect timeout each.
                if read_at - self._failed_at < max(self.max_age_s, FAILURE_BACKOFF_S):
                    raise DataVersionUnavailable("the data version could not be read a moment ago")
                try:
                    if self._read_stamp is None:
                        self._read_stamp = self._reader(self._engine)
                    stamp = self._read_stamp()
                except Exception:
                    self._failed_at = read_at
                    raise
                self._stamp, self._read_at = stamp, read_at
            return stamp

    def close(self) -> None:
        with self._lock:
            reader, self._read_stamp = self._read_stamp, None
        if isinstance(reader, _SqliteDataVersion):
            reader.close()

    def _reader(self, engine: Engine) -> Callable[[], str]:
        dialect = engine.dialect.name
        if dialect == "sqlite" and not is_in_memory_sqlite(engine):
            return _SqliteDataVersion(engine)
        if dialect == "postgresql":
            return _PostgresSnapshot(engine)
        return self._time_bucket

    def _time_bucket(self) -> str:
        return f"t{int(self._clock() / self.max_age_s)}" if self.max_age_s else f"t{self._clock()!r}"


def is_in_memory_sqlite(engine: Engine) -> bool:
    database = engine.url.database or ""
    return engine.dialect.name == "sqlite" and (database in ("", ":memory:") or "mode=memory" in str(engine.url))


class _SqliteDataVersion:
    """`PRAGMA data_version` of a connection taken out of the pool for good: its value changes when any other
    connection (this process's pool, another process) commits. (An in-memory database has one connection per
    thread, none of them "another": it gets the time bucket.)"""

    def __init__(self, engine: Engine) -> None:
        pooled = engine.raw_connection()
        pooled.detach()  # the pool forgets it: no slot is held, and it is never handed to a query
        self._connection: Any = pooled.dbapi_connection

    def __call__(self) -> str:
        (version,) = self._connection.execute("PRAGMA data_version").fetchone()
        return f"s{version}"

    def close(self) -> None:
        self._connection.close()


class _PostgresSnapshot:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self) -> str:
        with self._engine.connect() as connection:
            snapshot = connection.exec_driver_sql("SELECT pg_current_snapshot()::text").scalar_one()
        return f"p{snapshot}"
