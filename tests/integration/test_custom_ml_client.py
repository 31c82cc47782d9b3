"""The `custom_ml` agent's client against the real service (uvicorn on a loopback port, Redis from
scripts/with-services.sh), and its failure handling against scripted transports: retries under one
Idempotency-Key, Retry-After, timeouts, the circuit breaker, and HOLD with the reason whatever happens."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ml_service.data import load_all
from shared.adapters.agents.custom_ml import CustomMlClient
from shared.adapters.agents.factory import AgentClientRegistry, UnavailableClient
from shared.adapters.http import tls_context
from shared.adapters.resilience import CircuitBreaker
from shared.config import CustomMlAgentSettings, Settings
from shared.contracts.ml_decisions import DecisionRequest, DecisionResponse, decision_idempotency_key
from shared.domain.model import Agent, AgentDecision, Candle, Portfolio, Position, Side
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot
from shared.services.ports import AgentContext

REPO = Path(__file__).resolve().parents[2]
API_KEY = "integration-ml-key-0123456789"
# A fresh agent id per run: keys stored in a long-lived Redis by an earlier run never collide with this one's.
AGENT = Agent(int.from_bytes(os.urandom(3), "big") + 1, "Custom ML", "custom_ml", "direction-mlp")


def context(*, end: int = 3000, count: int = 48, agent: Agent = AGENT) -> AgentContext:
    data = load_all()
    candles = {
        symbol: [
            Candle(symbol, "1h", t, *(Decimal(repr(v)) for v in row))
            for t, row in zip(s.open_times[end - count : end], s.rows[end - count : end], strict=True)
        ]
        for symbol, s in data.items()
    }
    cycle_time = data["BTC"].open_times[end]
    snapshot = MarketSnapshot.build(cycle_time, candles)
    portfolio = Portfolio(agent.id, Decimal(50_000), {"ETH": Position(Decimal("2.5"), Decimal(3000))})
    return AgentContext(agent, cycle_time, snapshot, portfolio, RaceRules())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.fail("TEST_REDIS_URL is not set: run the tests through scripts/with-services.sh (make test)")
    port = _free_port()
    log = tmp_path_factory.mktemp("ml") / "service.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MlService__ApiKey": API_KEY, "Redis__ConnectionString": redis_url}
    command = [sys.executable, "-m", "uvicorn", "ml_service.app:create_app", "--factory", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen([*command, "--host", "127.0.0.1"], cwd=REPO, env=env, stdout=out, stderr=out)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"ml_service did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    yield RunningService(base_url, process)
    process.terminate()
    process.wait(timeout=10)


def client_for(base_url: str, **overrides: object) -> CustomMlClient:
    values: dict[str, object] = {"base_url": base_url, "api_key": SecretStr(API_KEY), "max_retries": 2}
    return CustomMlClient(AGENT, CustomMlAgentSettings(**{**values, **overrides}))


def decide(client: CustomMlClient, ctx: AgentContext | None = None) -> AgentDecision:
    return asyncio.run(client.decide(ctx or context()))


# ---------------------------------------------------------------- against the running service


def test_the_agent_decides_through_the_running_service(service: RunningService) -> None:
    ctx = context()
    decision = decide(client_for(service.base_url), ctx)

    assert decision.hold_reason is None, decision.reasoning
    assert "(model direction-mlp-" in decision.reasoning
    assert decision.confidence is not None
    assert 0 <= decision.confidence <= 1
    assert decision.latency_ms is not None
    assert decision.latency_ms > 0
    for order in decision.orders:
        assert order.side in (Side.BUY, Side.SELL)
        assert (order.quantity is None) != (order.notional_usd is None)
    response = DecisionResponse.model_validate_json(decision.raw_response or "")
    assert [s.symbol for s in response.signals] == ["BNB", "BTC", "ETH", "SOL", "XRP"]
    prompt = json.loads(decision.prompt or "")
    assert prompt["Idempotency-Key"] == decision_idempotency_key(AGENT.id, ctx.cycle_time)
    assert prompt["snapshot_sha256"] == ctx.snapshot.sha256
    assert prompt["candles"] == dict.fromkeys(["BNB", "BTC", "ETH", "SOL", "XRP"], 48)
    assert API_KEY not in (decision.prompt or "")


def test_deciding_the_same_cycle_again_replays_the_stored_answer(service: RunningService) -> None:
    ctx = context(end=3100)
    first = decide(client_for(service.base_url), ctx)
    again = decide(client_for(service.base_url), ctx)  # e.g. the cycle re-run after a crash
    assert again.raw_response == first.raw_response
    metrics = httpx.get(f"{service.base_url}/metrics").text
    assert 'ml_idempotency_total{outcome="hit"}' in metrics


def test_decisions_share_one_tls_context(service: RunningService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client is opened per decision; loading the CA bundle for each (~35 ms of CPU) made a fast-forward with
    the ML agent four times slower. The context is built once per process, whoever asks for it."""
    import ssl

    built: list[object] = []
    create = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        built.append(args)
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    tls_context.cache_clear()
    client = client_for(service.base_url)
    decisions = [decide(client, context(end=3200 + i)) for i in range(3)]

    assert all(d.hold_reason is None for d in decisions), [d.reasoning for d in decisions]
    assert len(built) == 1
    assert tls_context() is tls_context()


def test_a_wrong_key_is_a_hold_with_the_reason_and_no_retry(service: RunningService) -> None:
    decision = decide(client_for(service.base_url, api_key=SecretStr("not-the-key")))
    assert decision.orders == ()
    assert decision.hold_reason == "ML service failed: HTTP 401: missing or wrong X-API-Key header"


def test_too_few_candles_is_a_hold_saying_what_the_model_needs(service: RunningService) -> None:
    decision = decide(client_for(service.base_url), context(end=3300, count=10))
    assert decision.hold_reason is not None
    assert "HTTP 422: the model needs at least 25 candles per asset" in decision.hold_reason


def test_a_service_that_is_down_is_a_hold_after_the_retries() -> None:
    client = client_for(f"http://127.0.0.1:{_free_port()}", max_retries=1)
    decision = decide(client)
    assert decision.hold_reason is not None
    assert decision.hold_reason.startswith("ML service failed: cannot reach the service: ConnectError")
    assert client.breaker.consecutive_failures == 1


# ---------------------------------------------------------------- scripted transports


class Script:
    """A transport answering from a list of handlers, recording every request's headers and body."""

    def __init__(self, *handlers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handlers, self.requests = list(handlers), []  # type: ignore[var-annotated]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        return handler(request)


def ok(request: httpx.Request) -> httpx.Response:
    body = DecisionRequest.model_validate_json(request.content)  # the client speaks the contract
    answer = DecisionResponse(
        orders=[{"symbol": "BTC", "side": "BUY", "notional_usd": "1000.00"}],  # type: ignore[list-item]
        reasoning=f"{len(body.assets)} assets",
        confidence=0.7,
        model_version="test-model",
        signals=[],
    )
    return httpx.Response(200, content=answer.model_dump_json().encode())


def status(code: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    error = {"error": {"code": "x", "message": f"scripted {code}"}}
    return lambda request: httpx.Response(code, json=error, headers=headers)


def raises(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def scripted(script: Script, **overrides: object) -> CustomMlClient:
    values: dict[str, object] = {"base_url": "http://ml.test", "api_key": SecretStr(API_KEY), "max_retries": 2}
    return CustomMlClient(
        AGENT, CustomMlAgentSettings(**{**values, **overrides}), transport=httpx.MockTransport(script)
    )


def test_transient_failures_are_retried_with_the_same_key_and_bytes() -> None:
    script = Script(status(503), raises(httpx.ReadTimeout("slow")), ok)
    decision = decide(scripted(script))

    assert decision.hold_reason is None
    assert decision.orders[0].notional_usd == Decimal("1000.00")
    assert len(script.requests) == 3
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert keys == {decision_idempotency_key(AGENT.id, context().cycle_time)}
    assert len({r.content for r in script.requests}) == 1
    assert {r.headers["X-API-Key"] for r in script.requests} == {API_KEY}


def test_retry_after_is_honoured() -> None:
    script = Script(status(429, **{"Retry-After": "0.5"}), ok)
    started = time.monotonic()
    decision = decide(scripted(script))
    assert decision.hold_reason is None
    assert time.monotonic() - started >= 0.5


def test_permanent_errors_are_not_retried() -> None:
    script = Script(status(422))
    decision = decide(scripted(script))
    assert len(script.requests) == 1
    assert decision.hold_reason == "ML service failed: HTTP 422: scripted 422"


def test_a_timeout_on_every_attempt_is_a_hold_naming_the_timeout() -> None:
    script = Script(raises(httpx.ReadTimeout("slow")))
    decision = decide(scripted(script, timeout_seconds=1.5, max_retries=1))
    assert len(script.requests) == 2
    assert decision.hold_reason == "ML service failed: no answer within 1.5s (ReadTimeout)"


def test_an_invalid_response_is_a_hold() -> None:
    script = Script(lambda request: httpx.Response(200, json={"orders": "all of them"}))
    decision = decide(scripted(script))
    assert decision.hold_reason is not None
    assert decision.hold_reason.startswith("ML service returned an invalid response")


def test_the_breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial() -> None:
    now = [0.0]
    script = Script(status(500))
    client = scripted(script, max_retries=0, breaker_failures=2, breaker_reset_seconds=30)
    client.breaker = CircuitBreaker(failure_threshold=2, reset_after=30, clock=lambda: now[0])

    decide(client)
    decide(client)
    refused = decide(client)
    assert len(script.requests) == 2
    assert refused.hold_reason == "ML service circuit open after 2 consecutive failures; next probe in 30s"

    now[0] = 31  # half-open: one trial goes through; it fails, the breaker opens again
    decide(client)
    assert len(script.requests) == 3
    assert client.breaker.state == "open"

    now[0] = 62
    script.handlers = [ok]
    assert decide(client).hold_reason is None
    assert client.breaker.state == "closed"


def test_decide_never_raises_even_on_a_bug() -> None:
    client = scripted(Script(ok))
    client._prepare = lambda ctx: 1 / 0  # type: ignore[method-assign,assignment,return-value]
    decision = decide(client)
    assert decision.hold_reason == "ML client error: ZeroDivisionError: division by zero"


def test_an_empty_snapshot_is_a_hold_without_calling_the_service() -> None:
    script = Script(ok)
    ctx = context()
    empty = AgentContext(AGENT, ctx.cycle_time, MarketSnapshot.build(ctx.cycle_time, {}), ctx.portfolio, ctx.rules)
    decision = decide(scripted(script), empty)
    assert script.requests == []
    assert decision.hold_reason == "cannot build the ML request from this snapshot: the snapshot has no candles"


def test_the_registry_builds_the_client_only_when_a_service_is_configured() -> None:
    configured = AgentClientRegistry.from_settings(
        Settings(CustomMlAgent=CustomMlAgentSettings(BaseUrl="http://127.0.0.1:8081/", ApiKey=API_KEY))
    )
    client = configured(AGENT)
    assert isinstance(client, CustomMlClient)
    assert client.settings.base_url == "http://127.0.0.1:8081"

    missing = AgentClientRegistry.from_settings(Settings())(AGENT)
    assert isinstance(missing, UnavailableClient)
    assert "CustomMlAgent__BaseUrl is not set" in missing.reason


def test_the_cycle_deadline_still_applies(service: RunningService) -> None:
    async def run() -> AgentDecision:
        return await asyncio.wait_for(client_for(service.base_url).decide(context(end=3200)), timeout=30)

    assert asyncio.run(run()).hold_reason is None
    assert timedelta(seconds=CustomMlAgentSettings().timeout_seconds * 3) < timedelta(seconds=30)


@pytest.mark.parametrize("code", [400, 401, 413, 422])
def test_a_4xx_answer_is_a_hold_but_not_a_breaker_failure(code: int) -> None:
    client = scripted(Script(status(code)), max_retries=0, breaker_failures=1)
    for _ in range(3):
        decision = decide(client)
        assert decision.hold_reason is not None
        assert f"HTTP {code}" in decision.hold_reason
    assert client.breaker.consecutive_failures == 0
    assert client.breaker.state == "closed"  # a service that answers is up: it still gets the next cycle


def test_a_5xx_answer_counts_as_a_breaker_failure() -> None:
    client = scripted(Script(status(500)), max_retries=0, breaker_failures=5)
    decide(client)
    assert client.breaker.consecutive_failures == 1
