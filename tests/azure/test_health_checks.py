"""The dependency checks behind `/api/health`: breakers, replay files, ml_service readiness (MockTransport)."""

from __future__ import annotations

import types

import httpx

from shared.adapters.health import breaker_check, dependency_checks, market_data_check, ml_service_check
from shared.adapters.resilience import CircuitBreaker
from shared.config import Settings


def test_breaker_states_map_to_health_states() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_after=10, clock=lambda: now[0])

    assert breaker_check(breaker) == ("ok", "circuit closed")
    breaker.record_failure()
    assert breaker_check(breaker) == ("unavailable", "circuit open")
    now[0] = 11
    assert breaker_check(breaker) == ("degraded", "circuit half_open")


def test_market_data_checks() -> None:
    replay = types.SimpleNamespace(name="replay", available_symbols=lambda: ["BTC", "ETH"])
    empty = types.SimpleNamespace(name="replay", available_symbols=lambda: [])
    breaker = CircuitBreaker(failure_threshold=1)
    coingecko = types.SimpleNamespace(name="coingecko", resilience=types.SimpleNamespace(breaker=breaker))

    assert market_data_check(replay) == ("ok", "replay: 2 assets")
    assert market_data_check(empty) == ("unavailable", "replay: no data files")
    assert market_data_check(coingecko) == ("ok", "coingecko: circuit closed")
    coingecko.problems = {"ETH": "no usable 1h candle", "BTC": "no usable 1h candle"}  # answers, but unusable
    assert market_data_check(coingecko) == ("degraded", "coingecko: no usable candles for BTC, ETH in the latest run")
    breaker.record_failure()
    assert market_data_check(coingecko) == ("unavailable", "coingecko: circuit open")


def _client_for(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_ml_service_readiness() -> None:
    seen = []

    def ready(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "ready"})

    def starting(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "loading"})

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    url = "http://ml.internal:8081"
    assert ml_service_check(url, lambda: _client_for(httpx.MockTransport(ready))) == ("ok", "ready")
    assert seen == ["http://ml.internal:8081/health/ready"]
    assert ml_service_check(url, lambda: _client_for(httpx.MockTransport(starting))) == (
        "unavailable",
        "not ready (HTTP 503)",
    )
    assert ml_service_check(url, lambda: _client_for(httpx.MockTransport(down))) == (
        "unavailable",
        "not reachable (ConnectError)",
    )


def test_dependency_checks_report_llm_and_ml_breakers_and_survive_a_broken_probe() -> None:
    open_breaker = CircuitBreaker(failure_threshold=1)
    open_breaker.record_failure()

    class CustomMlClient:
        def __init__(self, breaker: CircuitBreaker) -> None:
            self.breaker = breaker

    registry = types.SimpleNamespace(
        llm_resources=types.SimpleNamespace(
            _states={
                ("llama", "https://api.groq.com/openai/v1", "llama-3.3-70b"): types.SimpleNamespace(
                    breaker=open_breaker
                )
            }
        ),
        _clients={7: (None, CustomMlClient(CircuitBreaker())), 8: (None, CustomMlClient(open_breaker))},
    )

    def broken() -> list[str]:
        raise OSError("disk gone")

    container = types.SimpleNamespace(
        settings=Settings(CustomMlAgent={"BaseUrl": "http://ml.internal:8081"}),
        market_data=types.SimpleNamespace(name="replay", available_symbols=broken),
        agent_clients=registry,
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200))

    checks = dependency_checks(container, http_factory=lambda: _client_for(transport))  # type: ignore[arg-type]

    assert checks == {
        "market_data": ("unavailable", "check failed"),
        "llm:llama:llama-3.3-70b": ("unavailable", "circuit open"),
        "ml_client": ("unavailable", "circuit open"),
        "ml_service": ("ok", "ready"),
    }
