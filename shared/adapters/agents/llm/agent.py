"""`LlmAgentClient`: the AgentModelClient port over an OpenAI-compatible chat-completions provider.

One decision: build the prompt -> (per attempt: circuit breaker -> rate limiter -> HTTP call) under a retry
policy bounded by the agent's own deadline -> parse -> an `AgentDecision` carrying the audit trail (prompt, raw
response, latency, tokens, cost). Every failure degrades to a HOLD whose reason starts with one of the
`HOLD_*` prefixes below; nothing raises out of `decide`, and it returns before the cycle's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from shared.adapters.agents.llm.client import (
    ChatCompletion,
    ChatCompletionsClient,
    ChatRequest,
    ModelOutputRejectedError,
)
from shared.adapters.agents.llm.holds import (
    HOLD_CIRCUIT_OPEN,
    HOLD_INVALID_OUTPUT,
    HOLD_PROVIDER_ERROR,
    HOLD_RATE_LIMITED,
    HOLD_TIMEOUT,
    hold_reason_text,
)
from shared.adapters.agents.llm.parsing import decision_from_text
from shared.adapters.agents.llm.prompt import PROMPT_VERSION, Prompt, build_prompt, estimate_tokens
from shared.adapters.http import public_url
from shared.adapters.resilience import (
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    MonotonicClock,
    OutboundCallError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    Sleep,
    TransientError,
    retrying,
)
from shared.domain.audit import MAX_STORED_CHARS, bounded_text
from shared.domain.model import AgentDecision
from shared.services.ports import AgentContext

logger = logging.getLogger(__name__)

__all__ = [
    "HOLD_CIRCUIT_OPEN",
    "HOLD_INVALID_OUTPUT",
    "HOLD_PROVIDER_ERROR",
    "HOLD_RATE_LIMITED",
    "HOLD_TIMEOUT",
    "LlmAgentClient",
    "LlmCallOptions",
]

MAX_STORED_RESPONSE_CHARS = MAX_STORED_CHARS
PER_MILLION = Decimal(1_000_000)
# A provider's reported `usage` is trusted within what the request could have cost: at most `max_tokens`
# generated, and a prompt at most this many times the (high-side) estimate plus a margin for the chat
# template. One answer claiming 500k tokens must not spend the tokens-per-minute budget of every agent.
PROMPT_USAGE_FACTOR = 4
PROMPT_USAGE_MARGIN = 256


@dataclass(frozen=True, slots=True)
class LlmCallOptions:
    """What one agent asks of its provider, and what it costs."""

    model: str
    temperature: float = 0.3
    max_tokens: int = 400
    timeout_s: float = 20.0
    # The whole decision (waits, retries included) must end within this; set below the cycle's agent timeout
    # so the agent returns a HOLD with its real reason instead of being cut off as a bare timeout.
    deadline_s: float = 25.0
    # An attempt started with less time than this left cannot finish: don't retry into it.
    min_attempt_s: float = 1.0
    prompt_price_per_mtok: Decimal = Decimal(0)
    completion_price_per_mtok: Decimal = Decimal(0)

    def cost_usd(self, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal | None:
        if prompt_tokens is None and completion_tokens is None:
            return None
        cost = (prompt_tokens or 0) * self.prompt_price_per_mtok + (completion_tokens or 0) * (
            self.completion_price_per_mtok
        )
        return (cost / PER_MILLION).quantize(Decimal("0.00000001"))


class LlmAgentClient:
    """Decides through a chat model. The limiter and breaker are shared by every agent of the same provider."""

    def __init__(
        self,
        *,
        chat: ChatCompletionsClient,
        options: LlmCallOptions,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        retry_policy: RetryPolicy,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.chat, self.options, self.limiter, self.breaker = chat, options, limiter, breaker
        self.retry_policy, self._clock, self._sleep, self._rng = retry_policy, clock, sleep, rng

    def __repr__(self) -> str:  # never the endpoint's headers (they hold the key)
        return f"LlmAgentClient(model={self.options.model!r}, url={self.chat.endpoint.url!r})"

    def model_settings(self) -> dict[str, Any]:
        """What is stored with each decision: how the model was asked (never the key or its headers)."""
        return {
            "kind": "llm",
            "endpoint": public_url(self.chat.endpoint.url),
            "model": self.options.model,
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_tokens,
            "json_mode": True,
            "prompt_version": PROMPT_VERSION,
        }

    async def decide(self, context: AgentContext) -> AgentDecision:
        started = self._clock()
        prompt = build_prompt(context)
        audit: dict[str, Any] = {"prompt": prompt.text}
        try:
            completion = await self._complete(prompt, deadline=started + self.options.deadline_s)
        except ModelOutputRejectedError as exc:
            # The provider's JSON mode refused the model's text: the text is still the model's answer.
            audit |= {"raw_response": _clip(exc.failed_generation), "latency_ms": self._ms_since(started)}
            decision = decision_from_text(exc.failed_generation, symbols=context.snapshot.candles, **audit)
            return self._logged(context, decision)
        except Exception as exc:
            reason, detail = _hold_reason(exc)
            audit["latency_ms"] = self._ms_since(started)
            hold = AgentDecision(orders=(), reasoning=f"HOLD: {detail}", hold_reason=reason, **audit)
            return self._logged(context, hold)
        audit |= {
            "raw_response": _clip(completion.content),
            "latency_ms": self._ms_since(started),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": self.options.cost_usd(completion.prompt_tokens, completion.completion_tokens),
        }
        if completion.finish_reason == "length" and completion.content.strip():
            logger.info("agent %d: answer cut at max_tokens=%d", context.agent.id, self.options.max_tokens)
        return self._logged(context, decision_from_text(completion.content, symbols=context.snapshot.candles, **audit))

    async def _complete(self, prompt: Prompt, *, deadline: float) -> ChatCompletion:
        request = ChatRequest(
            messages=prompt.messages,
            model=self.options.model,
            temperature=self.options.temperature,
            max_tokens=self.options.max_tokens,
        )
        prompt_estimate = estimate_tokens(prompt.system) + estimate_tokens(prompt.user)
        budget = prompt_estimate + self.options.max_tokens
        policy = retrying(
            self.retry_policy,
            deadline=deadline,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            min_attempt_seconds=self.options.min_attempt_s,
        )
        async for attempt in policy:
            with attempt:
                return await self._attempt(request, budget, deadline, prompt_estimate)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(
        self, request: ChatRequest, token_budget: int, deadline: float, prompt_estimate: int
    ) -> ChatCompletion:
        self.breaker.before_call()  # CircuitOpenError is not transient: no retry
        try:
            left = deadline - self._clock()
            permit = await self.limiter.acquire(token_budget, max_wait=max(0.0, left - self.options.min_attempt_s))
            left = deadline - self._clock()
            if left <= 0:
                raise CallTimeoutError("timeout: no time left for the call")
            try:
                # httpx's timeouts are per phase (a trickling server never trips the read timeout): this one
                # bounds the whole attempt by what is left of the deadline.
                completion = await asyncio.wait_for(
                    self.chat.complete(request), timeout=min(self.options.timeout_s, left)
                )
            except TimeoutError as exc:
                raise CallTimeoutError("timeout: attempt cut at the deadline") from exc
        except RateLimitedError as exc:
            self.breaker.record_neutral()  # throttled, not broken
            if exc.status == 429 and exc.retry_after:
                self.limiter.pause_for(exc.retry_after)  # every agent of this provider backs off, not just us
            raise
        except ModelOutputRejectedError:
            self.breaker.record_success()  # the provider works; the model misbehaved
            raise
        except TransientError:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.record_neutral()
            raise
        self.breaker.record_success()
        completion = self._sane_usage(completion, prompt_estimate)
        if completion.prompt_tokens is not None or completion.completion_tokens is not None:
            permit.settle((completion.prompt_tokens or 0) + (completion.completion_tokens or 0))
        return completion

    def _sane_usage(self, completion: ChatCompletion, prompt_estimate: int) -> ChatCompletion:
        """The completion with its usage capped at what the request could have been billed (recorded, costed
        and counted in the budget as capped); an absurd claim is logged."""
        prompt_cap = PROMPT_USAGE_FACTOR * prompt_estimate + PROMPT_USAGE_MARGIN
        completion_cap = self.options.max_tokens
        prompt_tokens, completion_tokens = completion.prompt_tokens, completion.completion_tokens
        capped_prompt = None if prompt_tokens is None else min(prompt_tokens, prompt_cap)
        capped_completion = None if completion_tokens is None else min(completion_tokens, completion_cap)
        if (capped_prompt, capped_completion) == (prompt_tokens, completion_tokens):
            return completion
        logger.warning(
            "model %s reported an absurd usage (prompt %s, completion %s tokens for a request of at most %d + %d):"
            " counted as capped",
            self.options.model,
            prompt_tokens,
            completion_tokens,
            prompt_cap,
            completion_cap,
        )
        return replace(completion, prompt_tokens=capped_prompt, completion_tokens=capped_completion)

    def _ms_since(self, started: float) -> float:
        return round((self._clock() - started) * 1000, 3)

    def _logged(self, context: AgentContext, decision: AgentDecision) -> AgentDecision:
        if decision.hold_reason:
            logger.warning("agent %d (%s) holds: %s", context.agent.id, context.agent.name, decision.hold_reason)
        return decision


def _hold_reason(exc: BaseException) -> tuple[str, str]:
    """(reason, detail): the reason is stable, so a cycle counts its HOLDs by it ("rate limited" x 4); the
    detail goes into the recorded reasoning."""
    if isinstance(exc, RateLimitedError):
        wait = "" if exc.retry_after is None else f", retry in {exc.retry_after:.3g}s"
        return HOLD_RATE_LIMITED, f"{HOLD_RATE_LIMITED} ({exc}{wait})"
    if isinstance(exc, CircuitOpenError):
        return HOLD_CIRCUIT_OPEN, f"{HOLD_CIRCUIT_OPEN} ({exc})"
    if isinstance(exc, CallTimeoutError):
        return HOLD_TIMEOUT, f"{HOLD_TIMEOUT} ({exc})"
    detail = str(exc) if isinstance(exc, OutboundCallError) else type(exc).__name__
    return hold_reason_text(HOLD_PROVIDER_ERROR, detail), f"{HOLD_PROVIDER_ERROR}: {detail}"


def _clip(text: str) -> str:
    return bounded_text(text, MAX_STORED_RESPONSE_CHARS) or ""
