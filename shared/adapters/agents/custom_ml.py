"""The `custom_ml` provider: asks ml_service (`POST /v1/decisions`) for a decision over HTTP.

Every call for one agent in one cycle carries the same `Idempotency-Key` (derived from the agent and the cycle),
so a retry -- ours after a timeout, or a re-run of the whole cycle -- gets the service's stored answer instead of
a second computation. Transient failures (timeouts, connection errors, 429, 5xx, 409 "still running") are
retried with exponential backoff and jitter, honouring `Retry-After`; a circuit breaker stops calling a service
that keeps failing. Whatever goes wrong, `decide()` returns a HOLD that says why: it never raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from shared.adapters.echo_scrub import scrub_echo
from shared.adapters.http import public_url, tls_context
from shared.adapters.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    PermanentError,
    RetryPolicy,
    TransientError,
    retry_hint,
    retrying,
)
from shared.contracts.ml_decisions import (
    API_KEY_HEADER,
    DECISIONS_PATH,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT_REPLAY_HEADER,
    AssetCandles,
    CandleIn,
    DecisionRequest,
    DecisionResponse,
    ErrorBody,
    PortfolioIn,
    RulesIn,
    decision_idempotency_key,
)
from shared.domain.model import Agent, AgentDecision, Order, Side
from shared.services.ports import AgentContext, AgentModelClient

if TYPE_CHECKING:
    from shared.config import CustomMlAgentSettings, Settings

MAX_RETRY_AFTER_S = 10.0


@dataclass(frozen=True, slots=True)
class _Call:
    body: bytes
    headers: dict[str, str]
    prompt: str


class CustomMlClient:
    """An `AgentModelClient` backed by ml_service. One instance per agent (the registry caches it), so the
    breaker's state outlives a cycle. The HTTP client is opened per decision: a timer run may use a new event
    loop each time, and one decision an hour per agent does not need a warm pool (the TLS context is shared)."""

    def __init__(
        self,
        agent: Agent,
        settings: CustomMlAgentSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.base_url is None:
            raise ValueError("CustomMlAgent__BaseUrl is not set")
        self.agent, self.settings, self._transport = agent, settings, transport
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failures, reset_after=settings.breaker_reset_seconds, clock=clock
        )
        # Backoff from 0.2 s; a server asking for more than MAX_RETRY_AFTER_S is not retried within this cycle.
        self.retry_policy = RetryPolicy(max_retries=settings.max_retries, base_delay=0.2, max_delay=MAX_RETRY_AFTER_S)

    def model_settings(self) -> dict[str, object]:
        """What is stored with each decision: the service called (the model version is in each answer)."""
        return {
            "kind": "custom_ml",
            "endpoint": public_url(str(self.settings.base_url)),
            "timeout_seconds": self.settings.timeout_seconds,
            "max_retries": self.settings.max_retries,
        }

    async def decide(self, context: AgentContext) -> AgentDecision:
        try:
            return await self._decide(context)
        except Exception as exc:  # the port's promise: a HOLD with the reason, never an exception
            self.breaker.record_failure()
            return AgentDecision.hold(f"ML client error: {type(exc).__name__}: {exc}")

    async def _decide(self, context: AgentContext) -> AgentDecision:
        try:
            self.breaker.before_call()
        except CircuitOpenError as exc:
            return AgentDecision.hold(f"ML service {exc}")
        try:
            call = self._prepare(context)
        except (ValidationError, ValueError) as exc:
            self.breaker.record_neutral()  # our input, not the service, is the problem
            return AgentDecision.hold(f"cannot build the ML request from this snapshot: {_first_line(exc)}")
        started = time.perf_counter()
        try:
            response = await self._post_with_retries(call)
            decision = DecisionResponse.model_validate_json(response.content)
        except (TransientError, PermanentError, ValidationError) as exc:
            if isinstance(exc, PermanentError) and exc.status is not None and 400 <= exc.status < 500:
                self.breaker.record_neutral()  # the service is up and answered: the request is what it refused
            else:
                self.breaker.record_failure()
            latency = (time.perf_counter() - started) * 1000
            what = "returned an invalid response" if isinstance(exc, ValidationError) else "failed"
            return AgentDecision.hold(f"ML service {what}: {_first_line(exc)}", prompt=call.prompt, latency_ms=latency)
        self.breaker.record_success()
        if response.headers.get(IDEMPOTENT_REPLAY_HEADER, "").lower() == "true":
            from shared.adapters.telemetry import race_metrics

            race_metrics().ml_cache_hit(self.agent.id)
        orders = tuple(
            Order(o.symbol, Side(o.side), quantity=o.quantity, notional_usd=o.notional_usd) for o in decision.orders
        )
        return AgentDecision(
            orders=orders,
            reasoning=f"{decision.reasoning} (model {decision.model_version})",
            confidence=decision.confidence,
            prompt=call.prompt,
            raw_response=response.text,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _prepare(self, context: AgentContext) -> _Call:
        assets = [
            AssetCandles(
                symbol=symbol,
                candles=[
                    CandleIn(
                        open_time=c.open_time,
                        open=float(c.open),
                        high=float(c.high),
                        low=float(c.low),
                        close=float(c.close),
                        volume=float(c.volume),
                    )
                    for c in candles
                ],
            )
            for symbol, candles in sorted(context.snapshot.candles.items())
            if candles
        ]
        if not assets:
            raise ValueError("the snapshot has no candles")
        interval = next(iter(context.snapshot.candles.values()))[0].interval
        rules, portfolio = context.rules, context.portfolio
        request = DecisionRequest(
            agent_id=context.agent.id,
            cycle_time=context.cycle_time,
            interval=interval,
            assets=assets,
            portfolio=PortfolioIn(
                cash=float(portfolio.cash), positions={s: float(p.quantity) for s, p in portfolio.positions.items()}
            ),
            rules=RulesIn(
                fee_bps=float(rules.fee_bps),
                slippage_bps=float(rules.slippage_bps),
                min_notional_usd=float(rules.min_notional_usd),
                max_position_fraction=float(rules.max_position_fraction),
            ),
        )
        key = decision_idempotency_key(context.agent.id, context.cycle_time)
        headers = {IDEMPOTENCY_KEY_HEADER: key, "Content-Type": "application/json"}
        if self.settings.api_key is not None:
            headers[API_KEY_HEADER] = self.settings.api_key.get_secret_value()
        body = request.model_dump_json().encode()  # serialised once: every retry sends the same bytes
        # The audit trail: the candles are the snapshot's (its sha256 is stored with the decision), so they are
        # summarised here rather than stored again with every decision.
        prompt = json.dumps(
            {
                "request": f"POST {self.settings.base_url}{DECISIONS_PATH}",
                IDEMPOTENCY_KEY_HEADER: key,
                "snapshot_sha256": context.snapshot.sha256,
                "candles": {a.symbol: len(a.candles) for a in assets},
                "portfolio": request.portfolio.model_dump(),
                "rules": request.rules.model_dump(),
                "body_bytes": len(body),
            }
        )
        return _Call(body, headers, prompt)

    async def _post_with_retries(self, call: _Call) -> httpx.Response:
        timeout = httpx.Timeout(self.settings.timeout_seconds)
        async with httpx.AsyncClient(
            base_url=str(self.settings.base_url), timeout=timeout, transport=self._transport, verify=tls_context()
        ) as client:
            async for attempt in retrying(self.retry_policy):
                with attempt:
                    return await _post_once(client, call, self.settings.timeout_seconds)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


async def _post_once(client: httpx.AsyncClient, call: _Call, timeout_s: float) -> httpx.Response:
    try:
        response = await client.post(DECISIONS_PATH, content=call.body, headers=call.headers)
    except httpx.TimeoutException as exc:
        raise TransientError(f"no answer within {timeout_s:g}s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"cannot reach the service: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if status < 400:
        return response
    message = f"HTTP {status}: {scrub_echo(_error_message(response), response)}"  # a 401 body may repeat the key
    # 409: the first request with this Idempotency-Key is still computing; asking again soon gets its answer.
    if status in (409, 429) or status >= 500:
        raise TransientError(message, status=status, retry_after=retry_hint(response.headers))
    raise PermanentError(message, status=status)


def _error_message(response: httpx.Response) -> str:
    try:
        return ErrorBody.model_validate_json(response.content).error.message
    except ValidationError:
        return response.text[:200] or response.reason_phrase


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def build_custom_ml_client(agent: Agent, settings: Settings) -> AgentModelClient:
    """The registry's builder: fails (and the registry records a HOLD reason) when no service is configured."""
    return CustomMlClient(agent, settings.custom_ml)
