"""The CoinGecko client against the local stand-in: plans and key headers, recorded error bodies, what is
retried (429 with retry-after, 5xx, timeouts, connection errors) and what is not, the rate limiter and the
circuit breaker."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from shared.adapters.market_data.coingecko import CoinGeckoConfigurationError, CoinGeckoResponseError
from shared.adapters.resilience import (
    BreakerState,
    CallTimeoutError,
    CircuitOpenError,
    RateLimitedError,
    TransientError,
)
from shared.services.seed import DEFAULT_ASSETS
from tests.coingecko.helpers import FakeTime, make_provider
from tests.coingecko.standin import CoinGeckoStandIn, Reply, rate_limited, running_standin, server_error

BTC = DEFAULT_ASSETS[0]
DEMO_KEY = "CG-demoKeyForTests123"


def fetch_btc(provider, standin: CoinGeckoStandIn):  # type: ignore[no-untyped-def]
    return provider.fetch_candles([BTC], start=standin.now - timedelta(hours=3), end=standin.now)


def test_keyless_sends_no_key_and_gets_candles(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    candles = fetch_btc(make_provider(standin, fake_time), standin)
    assert len(candles) == 3
    [request] = standin.requests
    assert request["path"] == "/coins/bitcoin/ohlc"
    assert request["query"] == {"vs_currency": ["usd"], "days": ["1"]}
    assert not any(h.startswith("x-cg-") for h in request["headers"])


def test_demo_key_goes_in_the_demo_header(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    fetch_btc(make_provider(standin, fake_time, ApiKey=DEMO_KEY), standin)
    assert standin.requests[0]["headers"]["x-cg-demo-api-key"] == DEMO_KEY


def test_pro_plan_uses_the_pro_header() -> None:
    for standin in running_standin(host_kind="pro"):
        fetch_btc(make_provider(standin, FakeTime(), ApiKey=DEMO_KEY, Plan="pro"), standin)
        assert standin.requests[0]["headers"]["x-cg-pro-api-key"] == DEMO_KEY


def test_pro_key_on_the_public_host_is_a_configuration_error_not_retried(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    provider = make_provider(standin, fake_time, ApiKey=DEMO_KEY, Plan="pro")  # pro header, public host
    with pytest.raises(CoinGeckoConfigurationError) as caught:
        fetch_btc(provider, standin)
    message = str(caught.value)
    assert "error_code 10010" in message
    assert "CoinGecko__Plan" in message
    assert "CoinGecko__ApiKey" in message
    assert DEMO_KEY not in message
    assert len(standin.requests) == 1
    assert provider.resilience.breaker.state is BreakerState.CLOSED  # our mistake, not CoinGecko's health


def test_demo_key_on_the_pro_host_is_a_configuration_error_not_retried() -> None:
    for standin in running_standin(host_kind="pro"):
        provider = make_provider(standin, FakeTime(), ApiKey=DEMO_KEY, Plan="demo")  # demo header, pro host
        with pytest.raises(CoinGeckoConfigurationError, match=r"error_code 10011.*CoinGecko__Plan=demo"):
            fetch_btc(provider, standin)
        assert len(standin.requests) == 1


def test_missing_key_on_the_pro_host_names_the_key_setting() -> None:
    for standin in running_standin(host_kind="pro"):
        provider = make_provider(standin, FakeTime())  # keyless against pro-api
        with pytest.raises(CoinGeckoConfigurationError, match=r"HTTP 401 error_code 10002.*CoinGecko__ApiKey"):
            fetch_btc(provider, standin)
        assert len(standin.requests) == 1


def test_429_waits_for_retry_after_then_succeeds(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    standin.script("/coins/", rate_limited("7"))
    provider = make_provider(standin, fake_time)
    assert len(fetch_btc(provider, standin)) == 3
    assert len(standin.requests) == 2
    assert sum(fake_time.sleeps) >= 7  # never sooner than CoinGecko asked


def test_429_asking_for_minutes_fails_fast_and_holds_the_next_calls(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    standin.script("/coins/", rate_limited("119"))  # the recorded header
    provider = make_provider(standin, fake_time)
    with pytest.raises(RateLimitedError, match="HTTP 429 error_code 429: You've exceeded the Rate Limit"):
        fetch_btc(provider, standin)
    with pytest.raises(RateLimitedError, match="client-side rate limit"):
        fetch_btc(provider, standin)  # the limiter keeps the pause: no request spent on a sure 429
    assert len(standin.requests) == 1
    assert fake_time.sleeps == []  # the timer is not stalled for two minutes
    fake_time.now += 120
    assert len(fetch_btc(provider, standin)) == 3


def test_5xx_is_retried_with_backoff(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    standin.script("/coins/", server_error(503), server_error(502))
    provider = make_provider(standin, fake_time)
    assert len(fetch_btc(provider, standin)) == 3
    assert len(standin.requests) == 3
    assert len(fake_time.sleeps) == 2
    assert provider.resilience.breaker.state is BreakerState.CLOSED


def test_timeouts_are_retried(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    standin.script("/coins/", Reply(delay_s=1.0, body=[]), Reply(delay_s=1.0, body=[]))
    provider = make_provider(standin, fake_time, TimeoutSeconds=0.2, MaxRetries=1)
    with pytest.raises(CallTimeoutError, match=r"/coins/bitcoin/ohlc: no answer within 0.2s"):
        fetch_btc(provider, standin)
    assert len(standin.requests) == 2


def test_connection_errors_are_transient(fake_time: FakeTime) -> None:
    for standin in running_standin():
        provider = make_provider(standin, fake_time, MaxRetries=2)
    with pytest.raises(TransientError, match="connection failed"):
        fetch_btc(provider, standin)  # the server is gone: connection refused
    assert len(fake_time.sleeps) == 2


def test_a_dead_api_opens_the_breaker_and_later_calls_are_not_attempted(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    standin.outage = server_error(500)
    provider = make_provider(standin, fake_time, MaxRetries=1, BreakerFailures=3, BreakerResetSeconds=300)
    with pytest.raises(TransientError):
        fetch_btc(provider, standin)  # 2 attempts
    with pytest.raises(CircuitOpenError):
        fetch_btc(provider, standin)  # 3rd attempt opens the breaker; the retry is refused
    with pytest.raises(CircuitOpenError):
        fetch_btc(provider, standin)
    assert len(standin.requests) == 3
    standin.outage = None
    fake_time.now += 301  # half-open: one probe, which succeeds and closes it
    assert len(fetch_btc(provider, standin)) == 3
    assert provider.resilience.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, "[[1710028800000, 1, 2, 0.5, 1.5]"), "/coins/bitcoin/ohlc: 200 with a body that is not JSON"),
        (Reply(200, "<html>cloudflare</html>"), "/coins/bitcoin/ohlc: 200 with a body that is not JSON"),
        (Reply(200, {"prices": []}), "/coins/bitcoin/ohlc: expected a JSON array"),
        (Reply(200, [[1710028800000, 1, 2, 0.5]]), "/coins/bitcoin/ohlc: no usable 1h candle .* row 0 is not"),
    ],
)
def test_malformed_and_wrong_shape_bodies_fail_with_the_endpoint_named_and_are_not_retried(
    standin: CoinGeckoStandIn, fake_time: FakeTime, reply: Reply, message: str
) -> None:
    standin.script("/coins/", reply)
    with pytest.raises(CoinGeckoResponseError, match=message):
        fetch_btc(make_provider(standin, fake_time), standin)
    assert len(standin.requests) == 1


def test_other_client_errors_are_permanent(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    provider = make_provider(standin, fake_time, Ids="BTC=no-such-coin")
    with pytest.raises(Exception, match=r"/coins/no-such-coin/ohlc: HTTP 404: coin not found") as caught:
        fetch_btc(provider, standin)
    assert not isinstance(caught.value, TransientError)
    assert len(standin.requests) == 1


def test_rate_limiter_keeps_the_calls_per_minute(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    provider = make_provider(standin, fake_time, CallsPerMinute=2)
    for _ in range(2):
        fetch_btc(provider, standin)
    assert fake_time.sleeps == []
    with pytest.raises(RateLimitedError, match="client-side rate limit"):
        fetch_btc(provider, standin)  # the next slot is ~60 s away: more than a run should wait
    assert len(standin.requests) == 2


def test_simple_price_and_ping(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    provider = make_provider(standin, fake_time)
    prices = provider.latest_prices(DEFAULT_ASSETS)
    assert set(prices) == {"BTC", "ETH", "SOL", "XRP", "BNB"}
    assert all(price > 0 and at == standin.now for price, at in prices.values())
    assert standin.paths() == ["/simple/price"]  # one call for all assets
    assert provider.ping() == "(V3) To the Moon!"


def test_key_never_appears_in_logs_or_reprs(
    standin: CoinGeckoStandIn, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.script("/coins/", server_error(503))
    provider = make_provider(standin, fake_time, ApiKey=DEMO_KEY)
    fetch_btc(provider, standin)
    assert DEMO_KEY not in caplog.text
    assert DEMO_KEY not in repr(provider.config)
