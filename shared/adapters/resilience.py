"""Resilience for every outbound HTTP adapter (LLM providers now; CoinGecko and the ML service next).

- The project's own exceptions: adapters map vendor errors onto `TransientError` (worth retrying: 429, 5xx,
  timeouts, connection errors) or `PermanentError` (a retry would fail the same way: 400, 401, 404, ...),
  always with `raise ... from e`, so callers never import httpx or a vendor SDK to tell them apart.
- `RateLimiter`: client-side requests- and tokens-per-minute budgets (sliding window, FIFO reservations).
- `CircuitBreaker`: stops calling a provider that keeps failing, then probes it again after a delay.
- `retrying()`: the tenacity policy (exponential backoff with jitter, server hints honoured, deadline-aware).

Every time-dependent class takes an injectable monotonic clock and sleep, so tests never really wait.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

MonotonicClock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOW_SECONDS = 60.0


# ---------------------------------------------------------------- the project's own exceptions


class OutboundCallError(Exception):
    """An outbound call failed. `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(OutboundCallError):
    """Worth retrying: the same request may succeed later (429, 5xx, timeouts, connection errors).
    `retry_after` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class CallTimeoutError(TransientError):
    """The call did not complete within its timeout (connect, read, write or pool)."""


class RateLimitedError(TransientError):
    """The provider (429) or our own client-side budget refused the call; `retry_after` says when to retry."""


class PermanentError(OutboundCallError):
    """Retrying cannot help: bad request, bad credentials, unknown model, malformed response."""


class CircuitOpenError(OutboundCallError):
    """The circuit breaker is open: the provider failed repeatedly, so the call was not attempted."""

    def __init__(self, message: str, *, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


# ---------------------------------------------------------------- server hints: Retry-After and x-ratelimit-*

_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|ms|us|µs|ns|m|s))+$")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
# Groq repeats its hint in the 429 body: "... Please try again in 6.780999999s." (or "9m38.016s").
_TRY_AGAIN_IN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)", re.IGNORECASE)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration ("2m59.56s", "7.66s", "1h0m0s", "250ms") or a plain number of seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        if not _GO_DURATION.match(value):
            return None
        seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _GO_DURATION_PART.findall(value))
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date (RFC 9110)."""
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_hint(headers: Mapping[str, str], body_text: str = "", *, now: datetime | None = None) -> float | None:
    """How long the server asked us to wait, in seconds, or None when it gave no hint.

    Order: `Retry-After` (only sent on 429), Azure's `retry-after-ms`, then the `x-ratelimit-reset-*` of the
    budget that ran out (remaining == 0; all of them when none says which), then Groq's "try again in" text.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after" in lowered and (seconds := parse_retry_after(lowered["retry-after"], now=now)) is not None:
        return seconds
    if "retry-after-ms" in lowered and (ms := parse_duration(lowered["retry-after-ms"])) is not None:
        return ms / 1000
    resets: dict[str, float] = {}
    for name, value in lowered.items():
        if name.startswith("x-ratelimit-reset") and (seconds := parse_duration(value)) is not None:
            resets[name.removeprefix("x-ratelimit-reset")] = seconds  # "-requests", "-tokens", ""
    exhausted = [s for suffix, s in resets.items() if lowered.get(f"x-ratelimit-remaining{suffix}", "").strip() == "0"]
    if exhausted:
        return max(exhausted)
    if resets:
        # Which budget ran out is unknown: the requests reset is often the daily window (minutes), so the
        # shortest reset is the first moment a retry could succeed.
        return min(resets.values())
    if match := _TRY_AGAIN_IN.search(body_text):
        return parse_duration(match.group(1))
    return None


# ---------------------------------------------------------------- client-side rate limiter


@dataclass(slots=True)
class _Reservation:
    at: float
    tokens: int


class Permit:
    """A granted reservation; `settle` replaces the estimated tokens by what the provider reported."""

    def __init__(self, reservation: _Reservation) -> None:
        self._reservation = reservation

    @property
    def tokens(self) -> int:
        return self._reservation.tokens

    def settle(self, actual_tokens: int) -> None:
        self._reservation.tokens = max(0, actual_tokens)


class RateLimiter:
    """Requests- and tokens-per-minute budgets over a sliding 60 s window, shared by every agent of a provider.

    Each call reserves its slot at the earliest time both budgets allow it, in arrival order, then sleeps until
    then; reservation and check happen with no await in between, so no lock is needed and the limiter works
    from any event loop (the Functions host runs each timer in a fresh one). A caller that cannot be served
    within `max_wait` gets `RateLimitedError` at once instead of a sleep that would blow its deadline.
    """

    def __init__(
        self,
        *,
        requests_per_minute: int,
        tokens_per_minute: int,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests_per_minute < 1 or tokens_per_minute < 1:
            raise ValueError("rate limits must be at least 1 per minute")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock, self._sleep = clock, sleep
        self._reservations: deque[_Reservation] = deque()
        self._paused_until = 0.0

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back (the provider said so in a 429), so the others stop spending attempts."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def earliest_start(self, tokens: int) -> float:
        """When a call of `tokens` could start (monotonic time), given the reservations already made."""
        now = self._clock()
        self._forget_before(now - WINDOW_SECONDS)
        # One call larger than the whole budget can never fit: let it through alone rather than never.
        tokens = min(tokens, self.tokens_per_minute)
        start = max(now, self._paused_until, self._reservations[-1].at if self._reservations else now)
        in_window = [r for r in self._reservations if r.at > start - WINDOW_SECONDS]
        while in_window and (
            len(in_window) + 1 > self.requests_per_minute
            or sum(r.tokens for r in in_window) + tokens > self.tokens_per_minute
        ):
            start = in_window.pop(0).at + WINDOW_SECONDS  # wait until the oldest one leaves the window
        return start

    async def acquire(self, tokens: int, *, max_wait: float = math.inf) -> Permit:
        start = self.earliest_start(tokens)
        wait = start - self._clock()
        if wait > max_wait:
            raise RateLimitedError(
                f"client-side rate limit: next slot in {wait:.1f}s, more than the {max_wait:.1f}s left",
                retry_after=wait,
            )
        reservation = _Reservation(start, max(0, tokens))
        self._reservations.append(reservation)
        if wait > 0:
            await self._sleep(wait)
        return Permit(reservation)

    def _forget_before(self, cutoff: float) -> None:
        while self._reservations and self._reservations[0].at <= cutoff:
            self._reservations.popleft()


# ---------------------------------------------------------------- circuit breaker


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed: calls go through, consecutive failures are counted. After `failure_threshold` of them: open,
    calls are refused with `CircuitOpenError` for `reset_after` seconds. Then half-open: one probe call goes
    through; its success closes the breaker, its failure opens it again for another `reset_after`.

    Only what says the provider is unwell counts as a failure (callers decide: transient errors, not a 429 or
    a bad request). Shared by every agent of a provider, so one outage costs a few calls, not one per agent.
    """

    def __init__(
        self, *, failure_threshold: int = 5, reset_after: float = 60.0, clock: MonotonicClock = time.monotonic
    ) -> None:
        if failure_threshold < 1 or reset_after <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_after > 0")
        self.failure_threshold, self.reset_after, self._clock = failure_threshold, reset_after, clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after:
            return BreakerState.HALF_OPEN
        return self._state

    def before_call(self) -> None:
        """Raise `CircuitOpenError` unless a call may go through now (in half-open: only the one probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._state, self._probe_in_flight = BreakerState.HALF_OPEN, True
            return
        retry_in = max(0.0, self._opened_at + self.reset_after - self._clock())
        raise CircuitOpenError(
            f"circuit open after {self._failures} consecutive failures; next probe in {retry_in:.0f}s",
            retry_in=retry_in,
        )

    def record_success(self) -> None:
        self._state, self._failures, self._probe_in_flight = BreakerState.CLOSED, 0, False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probe_in_flight or self._failures >= self.failure_threshold:
            self._state, self._opened_at = BreakerState.OPEN, self._clock()
        self._probe_in_flight = False

    def record_neutral(self) -> None:
        """The call ended without saying anything about the provider's health (e.g. a 400): free the probe."""
        if self._probe_in_flight:
            self._probe_in_flight = False
            self._state = BreakerState.OPEN  # still unproven: the next call probes again at once
            self._opened_at = self._clock() - self.reset_after


# ---------------------------------------------------------------- retry policy


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures: exponential backoff with full jitter (`base_delay` * 2^n, at most
    `max_delay`), never sooner than the server's hint. A hint longer than `max_delay`, or a wait that would end
    past `deadline` (monotonic time), stops the retries at once: waiting less than the server asked is wasted,
    and waiting past the cycle's deadline only turns a reasoned HOLD into a timeout."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0

    def wait_seconds(self, attempt: int, error: BaseException | None, rng: random.Random | None = None) -> float:
        backoff = (rng or random).uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        hint = error.retry_after if isinstance(error, TransientError) else None
        return max(backoff, hint or 0.0)


def retrying(
    policy: RetryPolicy,
    *,
    deadline: float | None = None,
    clock: MonotonicClock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    min_attempt_seconds: float = 0.0,
) -> AsyncRetrying:
    """A tenacity `AsyncRetrying` that retries only `TransientError` under `policy` and re-raises the last error.

    `min_attempt_seconds` is how long an attempt needs to be worth starting: no retry is made when the wait
    plus that would cross `deadline`.
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.wait_seconds(state.attempt_number, error, rng)

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number > policy.max_retries:
            return True
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after if isinstance(error, TransientError) else None
        if hint is not None and hint > policy.max_delay:
            return True
        return deadline is not None and clock() + state.upcoming_sleep + min_attempt_seconds > deadline

    return AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait,
        stop=stop,
        sleep=sleep,
        reraise=True,
    )
