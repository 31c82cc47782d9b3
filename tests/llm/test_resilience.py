"""Resilience helpers: server hints, the rate limiter, the circuit breaker and the retry policy (fake clocks)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from shared.adapters.resilience import (
    BreakerState,
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    PermanentError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    parse_duration,
    parse_retry_after,
    retry_hint,
    retrying,
)
from tests.llm.helpers import FakeMonotonic, fixture

# ---------------------------------------------------------------- server hints


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2m59.56s", 179.56), ("7.66s", 7.66), ("9m38.016s", 578.016), ("1h0m0s", 3600), ("250ms", 0.25), ("2", 2)],
)
def test_go_durations_and_plain_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "-3", "nan", "inf", "5 minutes"])
def test_unparseable_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_retry_after_as_http_date() -> None:
    now = datetime(2024, 3, 14, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 14 Mar 2024 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Thu, 14 Mar 2024 11:00:00 GMT", now=now) == 0  # in the past: retry now
    assert parse_retry_after("not a date", now=now) is None


def test_groq_documented_429_headers_prefer_retry_after() -> None:
    headers = fixture("groq_error_429_rate_limit.json")["documented_headers_example"]
    assert retry_hint({k: v for k, v in headers.items() if not k.startswith("_")}) == 2


def test_ratelimit_reset_of_the_exhausted_budget() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "14370",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "2m59.56s",
        "x-ratelimit-reset-tokens": "7.66s",
    }
    assert retry_hint(headers) == pytest.approx(7.66)
    headers |= {"x-ratelimit-remaining-requests": "0"}
    assert retry_hint(headers) == pytest.approx(179.56)  # both ran out: the later reset


def test_ratelimit_reset_when_no_budget_says_it_ran_out_takes_the_soonest() -> None:
    assert retry_hint({"X-RateLimit-Reset-Requests": "2m59.56s", "X-RateLimit-Reset-Tokens": "7.66s"}) == 7.66


def test_azure_retry_after_ms_and_groq_body_text() -> None:
    assert retry_hint({"retry-after-ms": "1500"}) == 1.5
    body = fixture("groq_error_429_rate_limit.json")["bodies"][0]["body"]["error"]["message"]
    assert retry_hint({}, body) == pytest.approx(6.780999999)
    tpd = fixture("groq_error_429_rate_limit.json")["bodies"][2]["message_only"]
    assert retry_hint({}, tpd) == pytest.approx(578.016)
    assert retry_hint({}, "no hint here") is None


# ---------------------------------------------------------------- rate limiter


def limiter(clock: FakeMonotonic, *, rpm: int = 3, tpm: int = 1000) -> RateLimiter:
    return RateLimiter(requests_per_minute=rpm, tokens_per_minute=tpm, clock=clock, sleep=clock.sleep)


def test_requests_per_minute_spread_calls_over_the_window() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, rpm=3)

    async def run() -> list[float]:
        starts = []
        for _ in range(5):
            await limits.acquire(10)
            starts.append(clock.now - 1000)
        return starts

    assert asyncio.run(run()) == [0, 0, 0, 60, 60]


def test_tokens_per_minute_budget_and_settling_to_actual_usage() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, rpm=100, tpm=1000)

    async def run() -> None:
        first = await limits.acquire(600)
        assert limits.earliest_start(600) == 1060  # 600 + 600 > 1000 until the first leaves the window
        first.settle(300)  # the provider reported fewer tokens than estimated
        assert limits.earliest_start(600) == 1000

    asyncio.run(run())


def test_a_call_larger_than_the_whole_budget_still_goes_alone() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, tpm=1000)
    assert limits.earliest_start(5000) == 1000


def test_refuses_instead_of_sleeping_past_max_wait() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, rpm=1)

    async def run() -> None:
        await limits.acquire(1)
        with pytest.raises(RateLimitedError) as caught:
            await limits.acquire(1, max_wait=5)
        assert caught.value.retry_after == 60
        assert clock.slept == []  # nothing slept, no slot taken
        await limits.acquire(1, max_wait=60)
        assert clock.slept == [60]

    asyncio.run(run())


def test_pause_holds_every_caller_back() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, rpm=100)
    limits.pause_for(7.66)
    assert limits.earliest_start(1) == pytest.approx(1007.66)


def test_concurrent_callers_are_served_in_arrival_order() -> None:
    clock = FakeMonotonic()
    limits = limiter(clock, rpm=2)
    order: list[int] = []

    async def caller(i: int) -> None:
        await limits.acquire(1)
        order.append(i)

    async def run() -> None:
        await asyncio.gather(*(caller(i) for i in range(4)))

    asyncio.run(run())
    assert order == [0, 1, 2, 3]


# ---------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_n_failures_half_opens_after_the_delay_and_closes_on_success() -> None:
    clock = FakeMonotonic()
    breaker = CircuitBreaker(failure_threshold=5, reset_after=60, clock=clock)
    for _ in range(4):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call()
    assert caught.value.retry_in == 60

    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_a_failed_probe_reopens_for_another_delay() -> None:
    clock = FakeMonotonic()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=30, clock=clock)
    breaker.record_failure()
    clock.advance(30)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(29)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_success_resets_the_count_and_a_neutral_probe_frees_the_slot() -> None:
    clock = FakeMonotonic()
    breaker = CircuitBreaker(failure_threshold=2, reset_after=10, clock=clock)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()
    breaker.record_neutral()  # e.g. a 400: says nothing about health
    breaker.before_call()  # another probe may go at once


# ---------------------------------------------------------------- retry policy


def run_with_retries(
    errors: list[BaseException], *, policy: RetryPolicy, deadline: float | None = None
) -> tuple[int, FakeMonotonic, BaseException | None]:
    clock = FakeMonotonic()
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    async def run() -> BaseException | None:
        try:
            async for state in retrying(
                policy, deadline=deadline, clock=clock, sleep=clock.sleep, rng=random.Random(1)
            ):
                with state:
                    await attempt()
        except Exception as exc:
            return exc
        return None

    error = asyncio.run(run())
    return calls, clock, error


def test_transient_errors_are_retried_with_growing_jittered_backoff() -> None:
    errors: list[BaseException] = [TransientError("HTTP 503", status=503) for _ in range(3)]
    calls, clock, error = run_with_retries(errors, policy=RetryPolicy(max_retries=3, base_delay=1, max_delay=20))
    assert (calls, error) == (4, None)
    assert len(clock.slept) == 3
    assert all(0 <= s <= cap for s, cap in zip(clock.slept, (1, 2, 4), strict=True))


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    errors: list[BaseException] = [CallTimeoutError("timeout") for _ in range(10)]
    calls, _, error = run_with_retries(errors, policy=RetryPolicy(max_retries=2))
    assert calls == 3
    assert isinstance(error, CallTimeoutError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_permanent_errors_are_not_retried(status: int) -> None:
    calls, clock, error = run_with_retries([PermanentError(f"HTTP {status}", status=status)], policy=RetryPolicy())
    assert calls == 1
    assert clock.slept == []
    assert isinstance(error, PermanentError)


def test_waits_at_least_the_servers_retry_after() -> None:
    errors: list[BaseException] = [RateLimitedError("HTTP 429", status=429, retry_after=7.66)]
    calls, clock, error = run_with_retries(errors, policy=RetryPolicy(base_delay=0.1, max_delay=20))
    assert (calls, error) == (2, None)
    assert clock.slept == [7.66]


def test_a_hint_longer_than_the_max_wait_stops_at_once() -> None:
    errors: list[BaseException] = [RateLimitedError("TPD", status=429, retry_after=578.016)]
    calls, clock, error = run_with_retries(errors, policy=RetryPolicy(max_delay=20))
    assert calls == 1
    assert clock.slept == []
    assert isinstance(error, RateLimitedError)


def test_no_retry_that_would_cross_the_deadline() -> None:
    errors: list[BaseException] = [RateLimitedError("429", status=429, retry_after=5) for _ in range(3)]
    calls, clock, error = run_with_retries(errors, policy=RetryPolicy(max_delay=20), deadline=1000 + 8)
    assert calls == 2  # 0 s: fail, wait 5 s; 5 s: fail, another 5 s would end at 10 s > 8 s
    assert clock.slept == [5]
    assert isinstance(error, RateLimitedError)
