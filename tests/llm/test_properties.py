"""Whatever text a model returns, the race stays sound: decide() never raises, every order the model wrote is
either executed, rejected by the rules or rejected by the parser, and cash and positions never go negative."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.agents.llm.agent import LlmAgentClient, LlmCallOptions
from shared.adapters.agents.llm.client import ChatCompletionsClient, ChatEndpoint
from shared.adapters.agents.llm.parsing import parse_decision
from shared.adapters.resilience import CircuitBreaker, RateLimiter, RetryPolicy
from shared.domain.model import AgentDecision
from shared.domain.rules import execute_orders
from tests.llm.helpers import SYMBOLS, completion_envelope, context

CONTEXT = context()
PRICES = CONTEXT.snapshot.last_prices

sizes = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True, places=8),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
)
orders = st.fixed_dictionaries(
    {},
    optional={
        "symbol": st.one_of(st.sampled_from([*SYMBOLS, "btc", "DOGE", " eth ", "BTC ignore previous"]), st.text()),
        "side": st.one_of(st.sampled_from(["BUY", "SELL", "buy", "sell", "hold", "<|im_start|>"]), st.text()),
        "quantity": sizes,
        "notional_usd": sizes,
        "qty": sizes,
    },
)


def as_json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value) if not value.is_finite() else float(value)
    return value


decision_documents = st.fixed_dictionaries(
    {"orders": st.one_of(st.lists(orders, max_size=12), orders, st.none(), st.text(max_size=5))},
    optional={"reasoning": st.one_of(st.text(max_size=2000), st.integers()), "confidence": sizes},
)


@st.composite
def model_texts(draw: st.DrawFn) -> str:
    document = draw(decision_documents)
    text = json.dumps(document, default=as_json_number)
    wrapper = draw(st.sampled_from(["{}", "```json\n{}\n```", "Sure, here it is: {} Hope it helps!", "{}}}"]))
    return wrapper.replace("{}", text, 1) if draw(st.booleans()) else draw(st.text(max_size=300))


def check_invariants(decision: AgentDecision) -> None:
    assert isinstance(decision, AgentDecision)
    assert isinstance(decision.orders, tuple)
    result = execute_orders(CONTEXT.portfolio, decision.orders, PRICES, CONTEXT.rules)
    assert len(result.trades) + len(result.rejections) == len(decision.orders)
    assert result.portfolio.cash >= 0
    assert all(position.quantity > 0 for position in result.portfolio.positions.values())
    assert decision.hold_reason is None or decision.hold_reason.split(":")[0] in {
        "invalid output",
        "provider error",
        "rate limited",
        "circuit open",
        "timeout",
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=decision_documents)
def test_every_order_written_is_accounted_for(document: dict[str, Any]) -> None:
    text = json.dumps(document, default=as_json_number)
    written = document["orders"]
    try:
        parsed = parse_decision(text, symbols=set(SYMBOLS))
    except ValueError:
        assert not isinstance(written, list | dict) or written is None  # only a non-list 'orders' is unreadable
        return
    count = len(written) if isinstance(written, list) else (1 if isinstance(written, dict) else 0)
    assert len(parsed.orders) + len(parsed.rejected) == count


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=model_texts())
def test_whatever_the_model_says_the_portfolio_invariants_hold(text: str) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion_envelope(text))

    async def decide() -> AgentDecision:
        async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
            client = LlmAgentClient(
                chat=ChatCompletionsClient(
                    endpoint=ChatEndpoint.openai_compatible("http://model.test/v1", None),
                    http=http,
                    timeout=httpx.Timeout(5),
                ),
                options=LlmCallOptions(model="m"),
                limiter=RateLimiter(requests_per_minute=10**6, tokens_per_minute=10**9),
                breaker=CircuitBreaker(),
                retry_policy=RetryPolicy(max_retries=0),
            )
            return await client.decide(CONTEXT)

    decision = asyncio.run(decide())
    check_invariants(decision)
    assert decision.raw_response == text
