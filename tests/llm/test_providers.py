"""Provider builders, their registration, and the LLM seed agents."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.agents.factory import AgentClientRegistry, UnavailableClient
from shared.adapters.agents.llm.agent import LlmAgentClient
from shared.adapters.agents.llm.providers import (
    LOCAL_SMOLLM2_AGENT_NAME,
    SharedProviderResources,
    build_azure_openai_client,
    build_llama_client,
    build_openai_client,
    llm_activation,
    llm_seed_agents,
    local_smollm2_agent,
    register_llm_providers,
)
from shared.config import AzureOpenAISettings, LlamaSettings, OpenAISettings, RaceSettings, Settings
from shared.domain.model import Agent
from tests.llm.helpers import context

GROQ_KEY = "gsk_live_key_for_tests_only_0001"
LLAMA = Agent(1, "Llama 3.3 70B (Groq)", "llama", "llama-3.3-70b-versatile")


def settings(**sections: object) -> Settings:
    return Settings(**sections)  # type: ignore[arg-type]


def test_llama_on_groq_by_default_with_the_key() -> None:
    client = build_llama_client(LLAMA, settings(Llama=LlamaSettings(ApiKey=GROQ_KEY)))
    assert isinstance(client, LlmAgentClient)
    assert client.chat.endpoint.url == "https://api.groq.com/openai/v1/chat/completions"
    assert client.chat.endpoint.auth_headers == {"Authorization": f"Bearer {GROQ_KEY}"}
    assert client.options.model == "llama-3.3-70b-versatile"
    assert client.options.temperature == 0.3
    assert client.options.deadline_s == 28  # Race__AgentTimeoutSeconds 30 minus the margin
    assert GROQ_KEY not in repr(client)
    assert GROQ_KEY not in repr(client.chat.endpoint)


def test_together_and_openai_compatible_base_urls() -> None:
    together = build_llama_client(LLAMA, settings(Llama=LlamaSettings(Provider="together", ApiKey=GROQ_KEY)))
    assert isinstance(together, LlmAgentClient)
    assert together.chat.endpoint.url == "https://api.together.xyz/v1/chat/completions"
    local = build_llama_client(
        Agent(2, "Ollama", "llama", "llama3.2:3b"),
        settings(Llama=LlamaSettings(Provider="openai_compatible", BaseUrl="http://127.0.0.1:11434/v1/")),
    )
    assert isinstance(local, LlmAgentClient)
    assert local.chat.endpoint.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert local.chat.endpoint.auth_headers == {}  # a local server needs no key


def test_agent_params_override_and_the_key_never_goes_to_another_host() -> None:
    agent = local_smollm2_agent("http://127.0.0.1:8089/v1")
    client = build_llama_client(agent, settings(Llama=LlamaSettings(ApiKey=GROQ_KEY)))
    assert isinstance(client, LlmAgentClient)
    assert client.chat.endpoint.url == "http://127.0.0.1:8089/v1/chat/completions"
    assert client.chat.endpoint.auth_headers == {}
    assert client.options.temperature == 0.2
    assert agent.name == LOCAL_SMOLLM2_AGENT_NAME


@pytest.mark.parametrize(
    ("builder", "config", "setting"),
    [
        (build_llama_client, {}, "Llama__ApiKey"),
        (build_llama_client, {"Llama": LlamaSettings(Provider="openai_compatible")}, "Llama__BaseUrl"),
        (build_openai_client, {}, "OpenAI__ApiKey"),
        (build_azure_openai_client, {}, "AzureOpenAI__Endpoint"),
        (
            build_azure_openai_client,
            {"AzureOpenAI": AzureOpenAISettings(Endpoint="https://x.openai.azure.com", ApiKey="k-123")},
            "AzureOpenAI__Deployment",
        ),
        (
            build_azure_openai_client,
            {"AzureOpenAI": AzureOpenAISettings(Endpoint="https://x.openai.azure.com", Deployment="d")},
            "AzureOpenAI__ApiKey",
        ),
    ],
)
def test_missing_settings_are_named(builder, config: dict[str, object], setting: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=setting):
        builder(LLAMA, settings(**config))


def test_openai_and_azure_endpoints() -> None:
    openai = build_openai_client(Agent(3, "o", "openai", ""), settings(OpenAI=OpenAISettings(ApiKey="sk-test-1")))
    assert isinstance(openai, LlmAgentClient)
    assert openai.chat.endpoint.url == "https://api.openai.com/v1/chat/completions"
    assert openai.options.model == "gpt-4o-mini"  # the agent names none: the setting's model
    azure = build_azure_openai_client(
        Agent(4, "a", "azure_openai", "gpt-4o"),
        settings(
            AzureOpenAI=AzureOpenAISettings(Endpoint="https://race.openai.azure.com/", Deployment="gpt4o", ApiKey="k")
        ),
    )
    assert isinstance(azure, LlmAgentClient)
    assert azure.chat.endpoint.url == (
        "https://race.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    )
    assert azure.chat.endpoint.auth_headers == {"api-key": "k"}


def test_agents_of_one_provider_share_limiter_and_breaker() -> None:
    shared = SharedProviderResources()
    config = settings(Llama=LlamaSettings(ApiKey=GROQ_KEY))
    first = build_llama_client(LLAMA, config, shared=shared)
    second = build_llama_client(Agent(9, "Llama twin", "llama", "llama-3.3-70b-versatile"), config, shared=shared)
    other_model = build_llama_client(Agent(10, "8B", "llama", "llama-3.1-8b-instant"), config, shared=shared)
    assert isinstance(first, LlmAgentClient)
    assert isinstance(second, LlmAgentClient)
    assert isinstance(other_model, LlmAgentClient)
    assert first.limiter is second.limiter
    assert first.breaker is second.breaker
    assert first.limiter is not other_model.limiter  # Groq's limits are per model


def test_registered_providers_build_real_clients_or_hold_with_the_setting() -> None:
    registry = AgentClientRegistry.from_settings(settings(Race=RaceSettings(AgentTimeoutSeconds=10)))
    register_llm_providers(registry)
    assert {"llama", "openai", "azure_openai"} <= set(registry.providers)
    client = registry(LLAMA)
    assert isinstance(client, UnavailableClient)
    decision = asyncio.run(client.decide(context()))
    assert decision.hold_reason is not None
    assert "Llama__ApiKey is not set" in decision.hold_reason


def test_seed_agents_are_inactive_with_the_reason_until_configured() -> None:
    unconfigured = llm_seed_agents(settings())
    assert [a.name for a in unconfigured] == ["Llama 3.3 70B (Groq)", "Llama 3.1 8B (Groq)"]
    assert all(not a.active for a in unconfigured)
    assert unconfigured[0].inactive_reason == (
        "not configured: Llama__ApiKey is not set (required by Llama__Provider=groq)"
    )
    configured = llm_seed_agents(
        settings(
            Llama=LlamaSettings(ApiKey=GROQ_KEY),
            OpenAI=OpenAISettings(ApiKey="sk-test-1"),
            AzureOpenAI=AzureOpenAISettings(Endpoint="https://r.openai.azure.com", Deployment="gpt4o", ApiKey="k"),
        )
    )
    assert [(a.name, a.provider, a.active, a.inactive_reason) for a in configured] == [
        ("Llama 3.3 70B (Groq)", "llama", True, None),
        ("Llama 3.1 8B (Groq)", "llama", True, None),
        ("OpenAI gpt-4o-mini", "openai", True, None),
        ("Azure OpenAI gpt4o", "azure_openai", True, None),
    ]
    assert all(a.id == 0 and a.strategy for a in configured)


def test_seed_agents_for_together_and_a_local_server() -> None:
    (together,) = llm_seed_agents(settings(Llama=LlamaSettings(Provider="together")))
    assert together.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert not together.active
    (local,) = llm_seed_agents(
        settings(Llama=LlamaSettings(Provider="openai_compatible", BaseUrl="http://127.0.0.1:11434/v1", Model="qwen"))
    )
    assert (local.name, local.active) == ("Llama (qwen)", True)


def test_activation_of_a_non_llm_agent() -> None:
    assert llm_activation(Agent(1, "b", "baseline", "momentum"), settings()) == (
        False,
        "'baseline' is not an LLM provider",
    )
