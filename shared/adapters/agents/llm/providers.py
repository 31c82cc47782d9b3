"""Builders of the `llama`, `openai` and `azure_openai` clients for the agent registry, and the LLM seed agents.

An agent row names its provider and model (`agent.model`; empty means the provider's configured model), so one
race can hold several models side by side. Options come from the provider's settings section (`Llama__*`,
`OpenAI__*`, `AzureOpenAI__*`); an agent's `params` may override `temperature`, `max_tokens` and, for `llama`,
`base_url` (e.g. a local llama.cpp server next to Groq). The configured API key is only ever sent to the
configured endpoint: an agent that points elsewhere calls keyless.

Builders raise `ValueError` naming the missing setting; the registry turns that into a HOLD client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from shared.adapters.agents.llm.agent import LlmAgentClient, LlmCallOptions
from shared.adapters.agents.llm.client import ChatCompletionsClient, ChatEndpoint, LoopLocalHttpClient
from shared.adapters.http import tls_context
from shared.adapters.resilience import CircuitBreaker, MonotonicClock, RateLimiter, RetryPolicy
from shared.domain.model import Agent, AgentProvider
from shared.services.ports import AgentModelClient

if TYPE_CHECKING:
    from shared.config import LlmSettings, Settings

CONNECT_TIMEOUT_S = 5.0
# The agent's own deadline ends this much before the cycle's per-agent timeout, so it records why it held.
DEADLINE_MARGIN_S = 2.0
LOCAL_SMOLLM2_AGENT_NAME = "Local SmolLM2 135M (llama.cpp)"
LOCAL_SMOLLM2_MODEL = "smollm2-135m-instruct"


@dataclass(slots=True)
class _ProviderState:
    limiter: RateLimiter
    breaker: CircuitBreaker
    http: LoopLocalHttpClient


class SharedProviderResources:
    """One rate limiter and circuit breaker per (provider, endpoint, model), and one connection pool per
    (provider, endpoint), shared by every agent that uses them: Groq's limits are per organisation and model,
    not per agent; an outage of an endpoint is one outage however many agents call it; and a pool per endpoint
    keeps a hanging provider from holding the connections another one needs."""

    def __init__(self, *, clock: MonotonicClock = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[tuple[str, str, str], _ProviderState] = {}
        self._pools: dict[tuple[str, str], LoopLocalHttpClient] = {}
        self._lock = threading.Lock()

    def state_for(self, provider: str, url: str, model: str, settings: LlmSettings) -> _ProviderState:
        with self._lock:
            key = (provider, url, model)
            if key not in self._states:
                pool = self._pools.setdefault((provider, url), LoopLocalHttpClient(_new_http_client))
                self._states[key] = _ProviderState(
                    RateLimiter(
                        requests_per_minute=settings.requests_per_minute,
                        tokens_per_minute=settings.tokens_per_minute,
                        clock=self._clock,
                    ),
                    CircuitBreaker(
                        failure_threshold=settings.breaker_failures,
                        reset_after=settings.breaker_reset_seconds,
                        clock=self._clock,
                    ),
                    pool,
                )
            return self._states[key]

    async def aclose(self) -> None:
        """Close the connection pools opened on the running event loop (call it at the end of a job)."""
        for pool in list(self._pools.values()):
            await pool.aclose()


def _new_http_client() -> httpx.AsyncClient:
    # No env proxies or .netrc: the request goes where the settings say, with the headers we set, nothing more.
    return httpx.AsyncClient(
        verify=tls_context(),
        trust_env=False,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
    )


# ---------------------------------------------------------------- builders (the registry's signature)


def build_llama_client(
    agent: Agent, settings: Settings, *, shared: SharedProviderResources | None = None
) -> AgentModelClient:
    """Llama through Groq (default), Together.ai or any OpenAI-compatible server (`Llama__Provider`)."""
    section = settings.llama
    configured_url = section.resolved_base_url
    agent_url = _str_param(agent.params, "base_url")
    url = agent_url or configured_url
    if not url:
        raise ValueError("Llama__BaseUrl is not set (required when Llama__Provider=openai_compatible)")
    key = section.api_key.get_secret_value() if section.api_key and url == configured_url else None
    if key is None and agent_url is None and section.provider != "openai_compatible":
        raise ValueError(f"Llama__ApiKey is not set (required by Llama__Provider={section.provider})")
    endpoint = ChatEndpoint.openai_compatible(url, key)
    return _client(AgentProvider.LLAMA, endpoint, agent, section, settings, shared)


def build_openai_client(
    agent: Agent, settings: Settings, *, shared: SharedProviderResources | None = None
) -> AgentModelClient:
    section = settings.openai
    if section.api_key is None:
        raise ValueError("OpenAI__ApiKey is not set")
    if not section.base_url:
        raise ValueError("OpenAI__BaseUrl is not set")
    endpoint = ChatEndpoint.openai_compatible(section.base_url, section.api_key.get_secret_value())
    return _client(AgentProvider.OPENAI, endpoint, agent, section, settings, shared)


def build_azure_openai_client(
    agent: Agent, settings: Settings, *, shared: SharedProviderResources | None = None
) -> AgentModelClient:
    section = settings.azure_openai
    deployment = _str_param(agent.params, "deployment") or section.deployment
    if not section.endpoint:
        raise ValueError("AzureOpenAI__Endpoint is not set")
    if not deployment:
        raise ValueError("AzureOpenAI__Deployment is not set")
    if section.api_key is None:
        raise ValueError("AzureOpenAI__ApiKey is not set")
    endpoint = ChatEndpoint.azure_openai(
        section.endpoint, deployment, section.api_version, section.api_key.get_secret_value()
    )
    return _client(AgentProvider.AZURE_OPENAI, endpoint, agent, section, settings, shared)


def _client(
    provider: str,
    endpoint: ChatEndpoint,
    agent: Agent,
    section: LlmSettings,
    settings: Settings,
    shared: SharedProviderResources | None,
) -> LlmAgentClient:
    model = agent.model or section.model
    if not model and endpoint.sends_model:
        raise ValueError(f"agent {agent.name!r} names no model and the provider's Model setting is empty")
    state = (shared or SharedProviderResources()).state_for(provider, endpoint.url, model, section)
    options = LlmCallOptions(
        model=model,
        temperature=_float_param(agent.params, "temperature", section.temperature),
        max_tokens=int(_float_param(agent.params, "max_tokens", section.max_tokens)),
        timeout_s=section.timeout_seconds,
        deadline_s=max(1.0, settings.race.agent_timeout_seconds - DEADLINE_MARGIN_S),
        prompt_price_per_mtok=section.prompt_price_per_mtok,
        completion_price_per_mtok=section.completion_price_per_mtok,
    )
    timeout = httpx.Timeout(section.timeout_seconds, connect=min(CONNECT_TIMEOUT_S, section.timeout_seconds))
    chat = ChatCompletionsClient(endpoint=endpoint, http=state.http, timeout=timeout)
    return LlmAgentClient(
        chat=chat,
        options=options,
        limiter=state.limiter,
        breaker=state.breaker,
        retry_policy=RetryPolicy(max_retries=section.max_retries),
    )


class ClientRegistrar(Protocol):
    """Where builders are registered (the factory's AgentClientRegistry): this module never imports the factory."""

    def register(self, provider: str, builder: Callable[[Agent, Settings], AgentModelClient]) -> None: ...


def register_llm_providers(registry: ClientRegistrar) -> SharedProviderResources:
    """Register `llama`, `openai` and `azure_openai` on the registry, sharing one set of limiters/breakers."""
    shared = SharedProviderResources()
    registry.register(AgentProvider.LLAMA, lambda agent, settings: build_llama_client(agent, settings, shared=shared))
    registry.register(AgentProvider.OPENAI, lambda agent, settings: build_openai_client(agent, settings, shared=shared))
    registry.register(
        AgentProvider.AZURE_OPENAI, lambda agent, settings: build_azure_openai_client(agent, settings, shared=shared)
    )
    return shared


# ---------------------------------------------------------------- seed agents


def llm_seed_agents(settings: Settings) -> tuple[Agent, ...]:
    """The LLM agents to seed: Llama ones always (inactive, with the setting to configure, when there is no key
    or endpoint), OpenAI and Azure OpenAI ones only when configured. Activeness follows configuration, so a
    seed run after a key is added should also re-activate them (`llm_activation` gives the state)."""
    llama = settings.llama
    if llama.provider == "groq":
        agents = [
            _llm("Llama 3.3 70B (Groq)", AgentProvider.LLAMA, "llama-3.3-70b-versatile", "Groq free tier, 70B."),
            _llm("Llama 3.1 8B (Groq)", AgentProvider.LLAMA, "llama-3.1-8b-instant", "Groq free tier, 8B."),
        ]
    elif llama.provider == "together":
        agents = [
            _llm(
                "Llama 3.3 70B (Together)",
                AgentProvider.LLAMA,
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "Together.ai serverless.",
            )
        ]
    else:
        agents = [_llm(f"Llama ({llama.model})", AgentProvider.LLAMA, llama.model, "OpenAI-compatible server.")]
    if settings.openai.api_key is not None:
        agents.append(_llm(f"OpenAI {settings.openai.model}", AgentProvider.OPENAI, settings.openai.model, "OpenAI."))
    azure = settings.azure_openai
    if azure.api_key is not None and azure.endpoint and azure.deployment:
        agents.append(_llm(f"Azure OpenAI {azure.deployment}", AgentProvider.AZURE_OPENAI, azure.deployment, "Azure."))
    return tuple(_with_activation(agent, settings) for agent in agents)


def llm_activation(agent: Agent, settings: Settings) -> tuple[bool, str | None]:
    """(active, inactive_reason) for an LLM agent under these settings: the builder's own check, so what the
    leaderboard says and what a cycle would do never disagree."""
    builders = {
        AgentProvider.LLAMA: build_llama_client,
        AgentProvider.OPENAI: build_openai_client,
        AgentProvider.AZURE_OPENAI: build_azure_openai_client,
    }
    builder = builders.get(AgentProvider(agent.provider)) if agent.provider in set(AgentProvider) else None
    if builder is None:
        return False, f"{agent.provider!r} is not an LLM provider"
    try:
        builder(agent, settings)
    except ValueError as exc:
        return False, f"not configured: {exc}"
    return True, None


def local_smollm2_agent(base_url: str) -> Agent:
    """The offline LLM racer: SmolLM2-135M-Instruct served by a local llama.cpp server (see local_server.py)."""
    return Agent(
        id=0,
        name=LOCAL_SMOLLM2_AGENT_NAME,
        provider=AgentProvider.LLAMA,
        model=LOCAL_SMOLLM2_MODEL,
        strategy="SmolLM2-135M-Instruct (Q4_1 GGUF) on a local llama.cpp server: a real LLM, offline.",
        params={"base_url": base_url, "temperature": 0.2},
    )


def _llm(name: str, provider: str, model: str, strategy: str) -> Agent:
    return Agent(id=0, name=name, provider=provider, model=model, strategy=f"LLM agent: {strategy}")


def _with_activation(agent: Agent, settings: Settings) -> Agent:
    active, reason = llm_activation(agent, settings)
    return replace(agent, active=active, inactive_reason=reason)


def _str_param(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _float_param(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"param {key!r} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"param {key!r} must be a number, got {value!r}") from None
