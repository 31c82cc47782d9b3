"""`LlmAgentClient` over HTTP against the local stand-in server, replaying the recorded envelopes and 429s."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import httpx
import pytest

from shared.adapters.agents.llm.agent import LlmAgentClient, LlmCallOptions
from shared.adapters.agents.llm.client import ChatCompletionsClient, ChatEndpoint, ChatRequest
from shared.adapters.resilience import (
    BreakerState,
    CircuitBreaker,
    PermanentError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    TransientError,
)
from shared.domain.model import AgentDecision, Order, Side
from tests.llm.helpers import completion_envelope, context, fixture
from tests.llm.standin import Reply, StandInServer, decision_reply, groq_429, server_error, together_429

T = TypeVar("T")
MODEL = "llama-3.3-70b-versatile"
SECRET = "gsk_test_secret_never_logged_0123456789"
VALID = (
    '{"orders": [{"symbol": "BTC", "side": "SELL", "quantity": 0.1}, {"symbol": "ETH", "side": "BUY", '
    '"notional_usd": 5000}], "reasoning": "Rotate from BTC into ETH after the BTC top.", "confidence": 0.55}'
)


def run(make: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await make(http)

    return asyncio.run(main())


def agent_client(
    http: httpx.AsyncClient,
    server: StandInServer,
    *,
    timeout_s: float = 5.0,
    deadline_s: float = 10.0,
    max_retries: int = 2,
    breaker: CircuitBreaker | None = None,
    limiter: RateLimiter | None = None,
    prices: tuple[str, str] = ("0.59", "0.79"),
) -> LlmAgentClient:
    return LlmAgentClient(
        chat=ChatCompletionsClient(
            endpoint=ChatEndpoint.openai_compatible(server.base_url, SECRET),
            http=http,
            timeout=httpx.Timeout(timeout_s, connect=2.0),
        ),
        options=LlmCallOptions(
            model=MODEL,
            timeout_s=timeout_s,
            deadline_s=deadline_s,
            min_attempt_s=0.05,
            prompt_price_per_mtok=Decimal(prices[0]),
            completion_price_per_mtok=Decimal(prices[1]),
        ),
        limiter=limiter or RateLimiter(requests_per_minute=1000, tokens_per_minute=10_000_000),
        breaker=breaker or CircuitBreaker(failure_threshold=5, reset_after=60),
        retry_policy=RetryPolicy(max_retries=max_retries, base_delay=0.01, max_delay=2.0),
    )


def decide(server: StandInServer, **kwargs: object) -> AgentDecision:
    return run(lambda http: agent_client(http, server, **kwargs).decide(context()))  # type: ignore[arg-type]


# ---------------------------------------------------------------- valid decisions and the audit trail


def test_valid_decision_with_audit_trail_tokens_and_cost(standin: StandInServer) -> None:
    standin.script(MODEL, decision_reply(VALID))
    decision = decide(standin)

    assert decision.hold_reason is None
    assert decision.orders == (
        Order("BTC", Side.SELL, quantity=Decimal("0.1")),
        Order("ETH", Side.BUY, notional_usd=Decimal(5000)),
    )
    assert decision.reasoning == "Rotate from BTC into ETH after the BTC top."
    assert decision.confidence == 0.55
    assert decision.raw_response == VALID
    assert decision.prompt is not None
    assert "[system]" in decision.prompt
    assert "closes " in decision.prompt
    # usage from the recorded Groq envelope: 177 prompt, 87 completion tokens
    assert (decision.prompt_tokens, decision.completion_tokens) == (177, 87)
    assert decision.cost_usd == Decimal("0.00017316")  # 177 * 0.59e-6 + 87 * 0.79e-6
    assert decision.latency_ms is not None
    assert decision.latency_ms > 0


def test_request_is_openai_chat_completions_in_json_mode_with_bearer_auth(standin: StandInServer) -> None:
    decide(standin)
    (request,) = standin.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = request["json"]
    assert body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 400
    assert body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_azure_openai_url_and_api_key_header(standin: StandInServer) -> None:
    endpoint = ChatEndpoint.azure_openai(standin.root_url, "gpt-4o-mini-prod", "2024-10-21", SECRET)
    request = ChatRequest([{"role": "user", "content": "hi"}], model="ignored", temperature=0, max_tokens=16)

    async def call(http: httpx.AsyncClient) -> None:
        await ChatCompletionsClient(endpoint=endpoint, http=http, timeout=httpx.Timeout(5)).complete(request)

    run(call)
    (seen,) = standin.requests
    assert seen["path"] == "/openai/deployments/gpt-4o-mini-prod/chat/completions?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == SECRET
    assert "Authorization" not in seen["headers"]
    assert "model" not in seen["json"]


def test_together_envelope_with_eos_finish_reason(standin: StandInServer) -> None:
    envelope = fixture("together_chat_completion_json_mode.json")["response"]["json"]
    envelope["choices"][0]["message"]["content"] = VALID
    standin.script(MODEL, Reply(body=envelope))
    decision = decide(standin)
    assert len(decision.orders) == 2
    assert (decision.prompt_tokens, decision.completion_tokens) == (49, 52)


def test_keyless_local_server_sends_no_authorization(standin: StandInServer) -> None:
    endpoint = ChatEndpoint.openai_compatible(standin.base_url, None)
    assert endpoint.auth_headers == {}


# ---------------------------------------------------------------- malformed output


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("The capital of France is Paris.", "invalid output: no JSON decision object"),  # recorded Groq answer
        ('{"city":"Mexico City","country":"Mexico"}', "invalid output: no JSON decision object"),  # recorded
        ("", "invalid output: empty response"),
        (None, "invalid output: empty response"),  # a tool call: content null
        ('{"orders": [{"symbol": "DOGE", "side": "BUY", "quantity": 1}], "reasoning": "m"}', "every order rejected"),
    ],
)
def test_malformed_outputs_become_holds_with_the_reason(
    standin: StandInServer, content: str | None, reason: str
) -> None:
    standin.script(MODEL, decision_reply(content))
    decision = decide(standin)
    assert decision.orders == ()
    assert decision.hold_reason is not None
    assert reason in decision.hold_reason
    assert decision.raw_response == (content or "")
    assert decision.prompt_tokens == 177  # the call happened and is paid for, even if useless
    assert len(standin.requests) == 1  # bad output is not retried: same prompt, same kind of answer


def test_tool_call_envelope_from_together_is_an_invalid_output(standin: StandInServer) -> None:
    standin.script(MODEL, Reply(body=fixture("together_chat_completion_tool_calls.json")["response"]["json"]))
    assert decide(standin).hold_reason == "invalid output: empty response"


def test_groq_json_validate_failed_still_parses_the_failed_generation(standin: StandInServer) -> None:
    error = fixture("groq_error_400_tool_use_failed.json")["response"]["json"]
    error["error"] |= {"code": "json_validate_failed", "failed_generation": f"Here you go: {VALID}"}
    standin.script(MODEL, Reply(400, error))
    decision = decide(standin)
    assert len(decision.orders) == 2
    assert decision.raw_response == f"Here you go: {VALID}"


def test_a_malformed_envelope_is_a_provider_error(standin: StandInServer) -> None:
    standin.script(MODEL, Reply(200, "<html>502 Bad Gateway</html>"))
    decision = decide(standin)
    assert decision.hold_reason is not None
    assert decision.hold_reason.startswith("provider error: malformed response envelope")


# ---------------------------------------------------------------- 429, 5xx, 4xx, timeouts


def test_429_with_retry_after_is_retried_after_the_hint(standin: StandInServer) -> None:
    standin.script(MODEL, groq_429(headers={"retry-after": "0.3"}), decision_reply(VALID))
    decision = decide(standin)
    assert len(decision.orders) == 2
    assert len(standin.requests) == 2


def test_429_past_the_deadline_is_a_rate_limited_hold(standin: StandInServer) -> None:
    standin.always(MODEL, groq_429())  # documented headers: retry-after 2 s
    decision = decide(standin, deadline_s=1.0)
    assert decision.hold_reason == "rate limited"
    assert "Rate limit reached for model `llama-3.3-70b-versatile`" in decision.reasoning
    assert len(standin.requests) == 1


def test_groq_tpd_429_hint_in_the_body_pauses_the_limiter(standin: StandInServer) -> None:
    limiter = RateLimiter(requests_per_minute=1000, tokens_per_minute=10_000_000)
    standin.always(MODEL, groq_429(1, headers={}))  # "... Please try again in 5.289s"
    decision = decide(standin, limiter=limiter, deadline_s=3.0)
    assert decision.hold_reason == "rate limited"
    assert limiter.earliest_start(1) - __import__("time").monotonic() > 4  # everyone backs off


def test_together_429_without_hint_retries_with_backoff_then_holds(standin: StandInServer) -> None:
    standin.always(MODEL, together_429())
    decision = decide(standin, max_retries=2)
    assert decision.hold_reason == "rate limited"
    assert len(standin.requests) == 3


def test_5xx_burst_is_retried_then_succeeds(standin: StandInServer) -> None:
    standin.script(MODEL, server_error(503), server_error(502), decision_reply(VALID))
    assert len(decide(standin, max_retries=3).orders) == 2


@pytest.mark.parametrize(
    ("fixture_reply", "reason"),
    [
        (Reply(401, {"error": {"message": "Invalid API Key", "type": "invalid_request_error"}}), "HTTP 401"),
        (Reply(400, fixture("groq_error_400_tool_use_failed.json")["response"]["json"]), "HTTP 400"),
        (Reply(404, {"error": {"message": "The model `x` does not exist"}}), "HTTP 404"),
    ],
)
def test_4xx_is_not_retried(standin: StandInServer, fixture_reply: Reply, reason: str) -> None:
    standin.script(MODEL, fixture_reply)
    decision = decide(standin)
    assert decision.hold_reason is not None
    assert decision.hold_reason.startswith(f"provider error: {reason}")
    assert len(standin.requests) == 1


def test_5xx_bursts_open_the_shared_breaker_then_calls_stop(standin: StandInServer) -> None:
    standin.always(MODEL, server_error(500))
    breaker = CircuitBreaker(failure_threshold=5, reset_after=60)

    async def scenario(http: httpx.AsyncClient) -> list[AgentDecision]:
        client = agent_client(http, standin, max_retries=2, breaker=breaker)
        return [await client.decide(context()) for _ in range(4)]

    first, second, third, fourth = run(scenario)
    assert first.hold_reason == "provider error: HTTP 500: Service Unavailable"
    # The second decision's retries hit failures 4 and 5: the breaker opens under it, its third try is refused.
    assert second.hold_reason == third.hold_reason == fourth.hold_reason == "circuit open"
    assert breaker.state is BreakerState.OPEN
    assert "next probe in" in third.reasoning
    assert len(standin.requests) == 5  # then no more calls until the breaker half-opens


def test_timeout_is_a_timeout_hold_within_the_deadline(standin: StandInServer) -> None:
    standin.always(MODEL, decision_reply(VALID, delay_s=3))
    decision = decide(standin, timeout_s=0.3, deadline_s=1.0, max_retries=5)
    assert decision.hold_reason == "timeout"
    assert decision.latency_ms is not None
    assert decision.latency_ms < 1500


def test_a_hanging_server_is_cut_at_the_deadline(standin: StandInServer) -> None:
    standin.always(MODEL, Reply(hang=True))
    decision = decide(standin, timeout_s=30, deadline_s=0.5)
    assert decision.hold_reason == "timeout"
    assert decision.latency_ms is not None
    assert decision.latency_ms < 1000


def test_connection_refused_is_a_transient_provider_error() -> None:
    async def call(http: httpx.AsyncClient) -> None:
        endpoint = ChatEndpoint.openai_compatible("http://127.0.0.1:9/v1", None)
        client = ChatCompletionsClient(endpoint=endpoint, http=http, timeout=httpx.Timeout(1))
        await client.complete(ChatRequest([], model="m", temperature=0, max_tokens=16))

    with pytest.raises(TransientError, match="connection error") as caught:
        run(call)
    assert isinstance(caught.value.__cause__, httpx.TransportError)


def test_error_classes_carry_the_status(standin: StandInServer) -> None:
    standin.script(MODEL, groq_429(), Reply(403, {"error": {"message": "forbidden"}}))
    request = ChatRequest([], model=MODEL, temperature=0, max_tokens=16)

    async def call(http: httpx.AsyncClient) -> list[Exception]:
        client = ChatCompletionsClient(
            endpoint=ChatEndpoint.openai_compatible(standin.base_url, None), http=http, timeout=httpx.Timeout(5)
        )
        errors: list[Exception] = []
        for _ in range(2):
            try:
                await client.complete(request)
            except Exception as exc:
                errors.append(exc)
        return errors

    limited, forbidden = run(call)
    assert isinstance(limited, RateLimitedError)
    assert limited.status == 429
    assert limited.retry_after == 2
    assert isinstance(forbidden, PermanentError)
    assert forbidden.status == 403


# ---------------------------------------------------------------- the key never leaks


def test_api_key_never_in_decisions_logs_or_reprs(standin: StandInServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    standin.script(MODEL, Reply(401, {"error": {"message": "Invalid API Key"}}), server_error(500))
    decisions = [decide(standin, max_retries=0), decide(standin, max_retries=0)]

    async def client_repr(http: httpx.AsyncClient) -> str:
        client = agent_client(http, standin)
        return repr(client) + repr(client.chat.endpoint)

    everything = json.dumps([str(d) for d in decisions]) + caplog.text + run(client_repr)
    assert SECRET not in everything


def test_a_provider_s_html_error_page_is_a_short_hold_reason_and_stays_whole_in_the_reasoning(
    standin: StandInServer,
) -> None:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>" + "<p>nginx</p>" * 40 + "</body>"
    standin.script(MODEL, Reply(400, page))
    decision = decide(standin)
    assert decision.hold_reason is not None
    assert decision.hold_reason.startswith("provider error: HTTP 400: ")
    assert len(decision.hold_reason) <= len("provider error: ") + 120
    assert "<" not in decision.hold_reason
    assert "<title>502 Bad Gateway</title>" in decision.reasoning  # the detail is kept for the audit


def test_an_absurd_usage_is_capped_and_does_not_use_up_the_token_budget(standin: StandInServer) -> None:
    absurd = completion_envelope(VALID, model=MODEL)
    absurd["usage"] = {"prompt_tokens": 177, "completion_tokens": 500_000, "total_tokens": 500_177}
    standin.script(MODEL, Reply(body=absurd), decision_reply(VALID))
    limiter = RateLimiter(requests_per_minute=1000, tokens_per_minute=20_000)

    async def scenario(http: httpx.AsyncClient) -> list[AgentDecision]:
        return [await agent_client(http, standin, limiter=limiter, deadline_s=2.0).decide(context()) for _ in range(2)]

    first, second = run(scenario)
    assert (first.prompt_tokens, first.completion_tokens) == (177, 400)  # at most max_tokens can be billed
    assert first.cost_usd == Decimal("0.00042043")  # 177 * 0.59e-6 + 400 * 0.79e-6
    assert second.hold_reason is None  # the next agent of the provider is not locked out for a minute
    assert len(second.orders) == 2
    assert len(standin.requests) == 2
