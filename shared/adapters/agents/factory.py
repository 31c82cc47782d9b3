"""`AgentClientRegistry`: the AgentClientFactory port. Adding a provider is one adapter plus one `register` line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.adapters.agents.baselines import build_baseline
from shared.domain.model import Agent, AgentDecision, AgentProvider
from shared.services.ports import AgentContext, AgentModelClient

if TYPE_CHECKING:
    from shared.adapters.agents.llm.providers import SharedProviderResources
    from shared.config import Settings

logger = logging.getLogger(__name__)

ClientBuilder = Callable[[Agent, "Settings"], AgentModelClient]


class UnavailableClient:
    """Stands in for an agent that cannot get a real client: every decision is a HOLD saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def decide(self, context: AgentContext) -> AgentDecision:
        return AgentDecision.hold(self.reason)

    def model_settings(self) -> dict[str, str]:
        return {"kind": "unavailable", "reason": self.reason}


def build_baseline_client(agent: Agent, settings: Settings) -> AgentModelClient:
    return build_baseline(agent, default_seed=settings.race.random_seed)


def build_custom_ml_client(agent: Agent, settings: Settings) -> AgentModelClient:
    from shared.adapters.agents.custom_ml import build_custom_ml_client as build  # httpx client: built on demand

    return build(agent, settings)


class AgentClientRegistry:
    """Maps an agent's provider to a builder, and caches one client per agent (clients may hold connection pools,
    rate limiters and circuit breakers that must outlive a single cycle). Never raises for a bad agent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._builders: dict[str, ClientBuilder] = {}
        self._clients: dict[int, tuple[Agent, AgentModelClient]] = {}
        self._lock = threading.Lock()
        # The LLM providers' limiters, breakers and connection pools (None until they are registered).
        self.llm_resources: SharedProviderResources | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentClientRegistry:
        registry = cls(settings)
        registry.register(AgentProvider.BASELINE, build_baseline_client)
        registry.register(AgentProvider.CUSTOM_ML, build_custom_ml_client)
        from shared.adapters.agents.llm.providers import register_llm_providers  # httpx, certifi: on demand

        registry.llm_resources = register_llm_providers(registry)
        return registry

    async def aclose(self) -> None:
        """Close the connection pools opened on the running event loop. Call it before the loop ends (each
        Functions timer runs on a new one); clients, limiters and breakers are kept for the next job."""
        if self.llm_resources is not None:
            await self.llm_resources.aclose()

    def register(self, provider: str, builder: ClientBuilder) -> None:
        with self._lock:
            self._builders[str(provider)] = builder
            # Agents of this provider may have been given a fallback client before: rebuild them on next use.
            self._clients = {k: v for k, v in self._clients.items() if v[0].provider != str(provider)}

    @property
    def providers(self) -> list[str]:
        return sorted(self._builders)

    def __call__(self, agent: Agent) -> AgentModelClient:
        with self._lock:
            cached = self._clients.get(agent.id)
            # An edited agent (new model or params) gets a fresh client; an unchanged one keeps its state.
            if cached is not None and cached[0] == agent:
                return cached[1]
            client = self._build(agent)
            self._clients[agent.id] = (agent, client)
            return client

    def _build(self, agent: Agent) -> AgentModelClient:
        builder = self._builders.get(agent.provider)
        if builder is None:
            reason = f"unknown provider {agent.provider!r} (registered: {', '.join(self.providers) or 'none'})"
            logger.warning("agent %d (%s): %s", agent.id, agent.name, reason)
            return UnavailableClient(reason)
        try:
            return builder(agent, self.settings)
        except Exception as exc:  # bad model name, bad params, missing key: HOLD with the reason, never crash
            reason = f"cannot build {agent.provider} client for model {agent.model!r}: {exc}"
            logger.warning("agent %d (%s): %s", agent.id, agent.name, reason)
            return UnavailableClient(reason)
