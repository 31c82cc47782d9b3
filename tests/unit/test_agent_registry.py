"""The agent client registry: baselines by model name, HOLD for anything it cannot build, cached clients."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from shared.adapters.agents.baselines import AlwaysHold, Momentum, RandomTrader
from shared.adapters.agents.factory import AgentClientRegistry, UnavailableClient
from shared.config import RaceSettings, Settings
from shared.domain.model import Agent, AgentDecision, Portfolio
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot
from shared.services.ports import AgentContext, AgentModelClient
from tests.fakes import T0, ScriptedClient, candle_series

SETTINGS = Settings(Race=RaceSettings(RandomSeed=7))


def hold_reason(client: AgentModelClient, agent: Agent) -> str | None:
    snapshot = MarketSnapshot.build(T0 + timedelta(hours=2), {"BTC": candle_series("BTC", [1, 2])})
    context = AgentContext(
        agent, snapshot.cycle_time, snapshot, Portfolio(agent.id, RaceRules().starting_cash), RaceRules()
    )
    decision = asyncio.run(client.decide(context))
    assert isinstance(decision, AgentDecision)
    return decision.hold_reason


def test_baselines_are_registered_by_model_name() -> None:
    registry = AgentClientRegistry.from_settings(SETTINGS)
    assert isinstance(registry(Agent(1, "h", "baseline", "always_hold")), AlwaysHold)
    assert isinstance(registry(Agent(2, "m", "baseline", "momentum")), Momentum)
    random_client = registry(Agent(3, "r", "baseline", "random"))
    assert isinstance(random_client, RandomTrader)
    assert random_client.seed == 7  # Race__RandomSeed is the default seed
    assert registry.providers == ["azure_openai", "baseline", "custom_ml", "llama", "openai"]


def test_unknown_provider_or_model_gets_a_hold_client_that_says_why() -> None:
    registry = AgentClientRegistry.from_settings(SETTINGS)
    unknown_provider = Agent(1, "claude", "anthropic", "claude-3-5-haiku")
    client = registry(unknown_provider)
    assert isinstance(client, UnavailableClient)
    assert "unknown provider 'anthropic'" in (hold_reason(client, unknown_provider) or "")

    unknown_model = Agent(2, "x", "baseline", "martingale")
    assert "unknown baseline strategy 'martingale'" in (hold_reason(registry(unknown_model), unknown_model) or "")
    bad_params = Agent(3, "y", "baseline", "momentum", params={"lookback": -1})
    assert "lookback" in (hold_reason(registry(bad_params), bad_params) or "")


def test_clients_are_cached_per_agent_until_the_agent_changes() -> None:
    registry = AgentClientRegistry.from_settings(SETTINGS)
    agent = Agent(1, "m", "baseline", "momentum")
    first = registry(agent)
    assert registry(agent) is first
    assert registry(replace(agent)) is first  # equal agent read again from the database
    edited = registry(replace(agent, params={"lookback": 6}))
    assert edited is not first


def test_registering_a_provider_is_one_line() -> None:
    registry = AgentClientRegistry.from_settings(SETTINGS)
    agent = Agent(1, "llm", "anthropic", "claude-3-5-haiku")
    assert isinstance(registry(agent), UnavailableClient)
    scripted = ScriptedClient()
    registry.register("anthropic", lambda agent, settings: scripted)
    assert registry(agent) is scripted  # the earlier fallback is not kept once the provider exists


def test_llm_agents_get_real_clients_or_a_hold_that_names_the_missing_setting() -> None:
    from shared.adapters.agents.llm.agent import LlmAgentClient
    from shared.config import LlamaSettings

    registry = AgentClientRegistry.from_settings(SETTINGS)
    assert registry.llm_resources is not None
    groq = Agent(1, "Llama 3.3 70B (Groq)", "llama", "llama-3.3-70b-versatile")
    client = registry(groq)
    assert isinstance(client, UnavailableClient)
    assert "Llama__ApiKey is not set" in (hold_reason(client, groq) or "")

    configured = AgentClientRegistry.from_settings(Settings(Llama=LlamaSettings(ApiKey="gsk_test_key_123")))
    assert isinstance(configured(groq), LlmAgentClient)
    asyncio.run(configured.aclose())  # nothing opened yet: closing is harmless
