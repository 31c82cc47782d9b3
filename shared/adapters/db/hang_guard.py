"""A client-side deadline on every PostgreSQL round trip, for a database that stops answering altogether.

The server's `statement_timeout` only helps while the server runs: a stopped (SIGSTOPped, frozen VM, paused
container) or partitioned server never cancels anything, and on loopback or behind a NAT the kernel still
acknowledges our packets, so TCP keepalives and `tcp_user_timeout` never fire either. psycopg then waits on its
socket forever, and so would a Function worker. The guard gives each statement, commit, rollback and the pool's
pre-ping a deadline; a watchdog thread shuts the socket down when one passes, which makes the blocked call fail
at once with a disconnect (`OperationalError`, invalidated by the pool, retried by the jobs like an outage).

Deadlines: a statement, commit or rollback gets the statement timeout plus a second (so on a live server its
own, cleaner cancel comes first); a pre-ping `SELECT 1` gets the connect timeout. A new connection is bounded by
psycopg's `connect_timeout` over its whole handshake. Cost per call: a lock and a dict update; the watchdog
thread starts on the first guarded call, never at import.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

GRACE_S = 1.0  # the server's own statement_timeout fires first on a live server
TICK_S = 0.2


class Watchdog:
    """Shuts down the socket of any call that is still running past its deadline."""

    def __init__(self, *, tick_s: float = TICK_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._tick_s, self._clock = tick_s, clock
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[float, int, str]] = {}  # call id -> (deadline, socket fd, what)
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self.expired = 0  # calls cut short, for tests and logs

    @contextlib.contextmanager
    def deadline(self, seconds: float, fileno: int, what: str) -> Iterator[None]:
        call = next(self._ids)
        with self._lock:
            self._calls[call] = (self._clock() + seconds, fileno, what)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="db-hang-guard", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._calls.pop(call, None)

    def _watch(self) -> None:
        while True:
            time.sleep(self._tick_s)
            now = self._clock()
            with self._lock:  # held while cutting: a call ending right now cannot hand its connection on first
                late = [(call, fd, what) for call, (due, fd, what) in self._calls.items() if due <= now]
                for call, fd, _ in late:
                    del self._calls[call]  # cut once; the call fails and leaves
                    _shut_down(fd)
            for _, _, what in late:
                self.expired += 1
                logger.warning("database: %s got no answer within its deadline; dropped the connection", what)


def _shut_down(fd: int) -> None:
    # fromfd duplicates the descriptor; shutdown acts on the socket itself, so psycopg's blocked wait on the
    # original descriptor wakes up to an end of stream. Closing only the duplicate leaves psycopg's fd valid.
    try:
        duplicate = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return  # already closed by its owner
    with duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)


def _fileno(dbapi_connection: Any) -> int | None:
    try:
        return int(dbapi_connection.fileno())
    except Exception:  # a closed or broken connection: nothing to guard, let the call itself fail
        return None


def install_hang_guard(engine: Engine, *, connect_timeout_s: float, statement_timeout_s: float) -> Watchdog:
    """Bound every round trip of `engine` (PostgreSQL, psycopg) by a client-side deadline. Wraps the dialect's
    execute, commit, rollback and ping methods on this engine's own dialect instance (no engine events, which
    would dispatch around every statement)."""
    watchdog = Watchdog()
    dialect = engine.dialect
    statement_s = statement_timeout_s + GRACE_S

    def guarded(method: Callable[..., Any], seconds: float, what: str, connection_of: Callable[..., Any]) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            fd = _fileno(connection_of(*args))
            if fd is None:
                return method(*args, **kwargs)
            with watchdog.deadline(seconds, fd, what):
                return method(*args, **kwargs)

        return call

    def from_cursor(cursor: Any, *_: Any) -> Any:
        return cursor.connection

    def from_connection(connection: Any, *_: Any) -> Any:
        return connection

    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, name, guarded(getattr(dialect, name), statement_s, "a statement", from_cursor))
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, guarded(getattr(dialect, name), statement_s, name[3:], from_connection))
    dialect.do_ping = guarded(dialect.do_ping, connect_timeout_s, "the pool's ping", from_connection)  # type: ignore[method-assign]
    return watchdog
