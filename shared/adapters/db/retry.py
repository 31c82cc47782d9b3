"""Retry of a whole unit of work on transient database errors: Azure SQL's (failover, throttling, dropped
connections) and PostgreSQL's operational errors (a server restarting, a refused or dropped connection).

Only for work that is safe to run again from the start: the idempotent jobs (market data upserts, equity
snapshots unique on (agent, time)). A transient error surfaces as a DBAPI error whose message carries the SQL
Server error number, e.g. `... is not currently available. ... (40613) (SQLDriverConnect)`, or an ODBC
communication-link SQLSTATE (08S01, 08001, HYT00).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# https://learn.microsoft.com/azure/azure-sql/database/troubleshoot-common-errors-issues (transient faults)
AZURE_SQL_TRANSIENT_ERRORS = frozenset(
    {
        40613,  # database not currently available (failover, serverless resume)
        40197,  # service error processing the request (reconfiguration)
        40501,  # service is busy
        49918,  # not enough resources to process the request
        49919,  # too many create/update operations
        49920,  # too many operations in progress
        4060,  # cannot open database (often during a resume)
        4221,  # login to read-secondary failed due to long wait
        10928,  # resource limit reached
        10929,  # resource limit: minimum guarantee
        10053,  # transport: connection aborted
        10054,  # transport: connection reset by peer
        10060,  # transport: connection timed out
        233,  # no process on the other end of the pipe
        64,  # network name no longer available
        1205,  # deadlock victim: the transaction was rolled back, rerunning it is the documented answer
    }
)
TRANSIENT_SQLSTATES = frozenset({"08S01", "08001", "HYT00", "HYT01", "40001"})
_ERROR_NUMBER = re.compile(r"\((\d{2,5})\)")
_SQLSTATE = re.compile(r"\[([0-9A-Z]{5})\]")


def is_transient_db_error(error: BaseException) -> bool:
    """True for an error that Azure SQL documents as transient (worth running the unit of work again)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(error, OperationalError) and type(original).__module__.startswith("psycopg"):
        return True  # PostgreSQL: refused or dropped connections, server shutting down, statement timeouts
    texts = [str(arg) for arg in getattr(original, "args", ())] or [str(original)]
    for text in texts:
        if text.strip().upper() in TRANSIENT_SQLSTATES:
            return True
        if any(int(number) in AZURE_SQL_TRANSIENT_ERRORS for number in _ERROR_NUMBER.findall(text)):
            return True
        if any(state in TRANSIENT_SQLSTATES for state in _SQLSTATE.findall(text)):
            return True
    return False


class TransientDbRetry:
    """Runs a callable, and runs it again (exponential backoff with jitter) when it fails transiently."""

    def __init__(
        self,
        *,
        attempts: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts, self.base_delay, self.max_delay, self._sleep = attempts, base_delay, max_delay, sleep

    def __call__(self, work: Callable[[], T], *, what: str = "unit of work") -> T:
        retrying = Retrying(
            retry=retry_if_exception(is_transient_db_error),
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.base_delay, max=self.max_delay),
            sleep=self._sleep,
            before_sleep=self._log_retry(what),
            reraise=True,
        )
        return retrying(work)

    async def run_async(self, work: Callable[[], Awaitable[T]], *, what: str = "unit of work") -> T:
        """`__call__` for a coroutine: the event loop keeps running while it waits to try again."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient_db_error),
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.base_delay, max=self.max_delay),
            before_sleep=self._log_retry(what),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await work()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _log_retry(self, what: str) -> Callable[[RetryCallState], None]:
        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "%s: transient database error (attempt %d of %d), retrying: %s",
                what,
                state.attempt_number,
                self.attempts,
                type(error).__name__,
            )

        return log_retry
