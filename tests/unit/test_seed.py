"""Seeding the race: default assets and one agent per baseline, idempotently."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from shared.adapters.agents.baselines import STRATEGIES, build_baseline
from shared.adapters.agents.llm.providers import llm_activation, llm_seed_agents
from shared.config import LlamaSettings, Settings
from shared.domain.model import Agent
from shared.domain.rules import RaceRules
from shared.services.seed import (
    CONTROL_MODELS,
    CUSTOM_ML_NOT_CONFIGURED,
    CUSTOM_ML_UNAVAILABLE,
    DEFAULT_AGENTS,
    DEFAULT_ASSETS,
    DEFAULT_BASELINE_AGENTS,
    LLM_PROVIDERS,
    seed,
)
from tests.fakes import FakeUnitOfWorkFactory

RULES = RaceRules(starting_cash=Decimal(50_000))


def test_seed_adds_assets_agents_and_portfolios() -> None:
    uow = FakeUnitOfWorkFactory()
    report = seed(uow_factory=uow, rules=RULES)
    assert report.as_dict() == {"assets_added": 5, "agents_added": 7, "portfolios_created": 7}
    assert sorted(uow.state.assets) == ["BNB", "BTC", "ETH", "SOL", "XRP"]
    assert uow.state.assets["XRP"].coingecko_id == "ripple"
    assert uow.state.assets["BNB"].coingecko_id == "binancecoin"
    assert all(p.cash == Decimal(50_000) for p in uow.state.portfolios.values())
    assert {a.name for a in uow.state.agents.values()} >= {"Buy & Hold BTC", "Always Hold"}


def test_seed_twice_changes_nothing() -> None:
    uow = FakeUnitOfWorkFactory()
    seed(uow_factory=uow, rules=RULES)
    before = uow.state.copy()
    report = seed(uow_factory=uow, rules=RULES)
    assert report.as_dict() == {"assets_added": 0, "agents_added": 0, "portfolios_created": 0}
    assert uow.state.agents == before.agents
    assert uow.state.assets == before.assets


def test_a_race_seeded_before_the_equal_weight_control_gets_it_on_reseed() -> None:
    uow = FakeUnitOfWorkFactory()
    older = tuple(a for a in DEFAULT_AGENTS if a.model != "equal_weight")
    seed(uow_factory=uow, rules=RULES, agents=older)
    assert "Equal-Weight Buy & Hold" not in {a.name for a in uow.state.agents.values()}

    report = seed(uow_factory=uow, rules=RULES)

    assert report.as_dict() == {"assets_added": 0, "agents_added": 1, "portfolios_created": 1}
    [added] = [a for a in uow.state.agents.values() if a.model == "equal_weight"]
    assert (added.name, added.provider, added.active) == ("Equal-Weight Buy & Hold", "baseline", True)
    assert uow.state.portfolios[added.id].cash == RULES.starting_cash  # joins with the starting cash


def test_the_controls_are_seeded_baselines() -> None:
    seeded = {a.model for a in DEFAULT_BASELINE_AGENTS}
    assert CONTROL_MODELS.issubset(seeded)
    assert {"momentum", "mean_reversion"}.isdisjoint(CONTROL_MODELS)  # strategies, not controls
    [buy_and_hold] = [a for a in DEFAULT_BASELINE_AGENTS if a.model == "buy_and_hold"]
    assert buy_and_hold.params["symbol"] == "BTC"


def test_reseed_keeps_operator_edits() -> None:
    uow = FakeUnitOfWorkFactory()
    seed(uow_factory=uow, rules=RULES)
    uow.state.assets["BNB"] = replace(uow.state.assets["BNB"], active=False)
    seed(uow_factory=uow, rules=RULES)
    assert uow.state.assets["BNB"].active is False


def test_every_default_baseline_builds_and_covers_every_strategy() -> None:
    assert {a.model for a in DEFAULT_BASELINE_AGENTS} == set(STRATEGIES)
    for agent in DEFAULT_BASELINE_AGENTS:
        assert agent.provider == "baseline"
        assert agent.strategy
        assert build_baseline(agent).strategy == agent.model
    assert len({a.symbol for a in DEFAULT_ASSETS}) == 5


def _ml_agent(uow: FakeUnitOfWorkFactory) -> Agent:
    [agent] = [a for a in uow.state.agents.values() if a.provider == "custom_ml"]
    return agent


def test_the_ml_agent_is_listed_inactive_with_the_reason_until_a_service_is_configured() -> None:
    uow = FakeUnitOfWorkFactory()
    seed(uow_factory=uow, rules=RULES)
    agent = _ml_agent(uow)
    assert (agent.active, agent.inactive_reason) == (False, CUSTOM_ML_NOT_CONFIGURED)
    assert "CustomMlAgent__BaseUrl" in CUSTOM_ML_NOT_CONFIGURED

    seed(uow_factory=uow, rules=RULES, custom_ml_url="http://127.0.0.1:8081")
    assert (_ml_agent(uow).active, _ml_agent(uow).inactive_reason) == (True, None)

    seed(uow_factory=uow, rules=RULES, custom_ml_unavailable="it did not start (exit 1)")
    agent = _ml_agent(uow)
    assert agent.active is False
    assert agent.inactive_reason == CUSTOM_ML_UNAVAILABLE + "it did not start (exit 1)"


def test_an_operator_deactivation_of_the_ml_agent_survives_a_reseed() -> None:
    uow = FakeUnitOfWorkFactory()
    seed(uow_factory=uow, rules=RULES, custom_ml_url="http://127.0.0.1:8081")
    agent = _ml_agent(uow)
    uow.state.agents[agent.id] = replace(agent, active=False, inactive_reason="retired by the operator")
    seed(uow_factory=uow, rules=RULES, custom_ml_url="http://127.0.0.1:8081")
    assert _ml_agent(uow).inactive_reason == "retired by the operator"


def _llm_agents(uow: FakeUnitOfWorkFactory) -> dict[str, Agent]:
    return {a.name: a for a in uow.state.agents.values() if a.provider in LLM_PROVIDERS}


def _seed_llm(uow: FakeUnitOfWorkFactory, settings: Settings) -> None:
    seed(
        uow_factory=uow,
        rules=RULES,
        agents=(*DEFAULT_AGENTS, *llm_seed_agents(settings)),
        llm_activation=lambda agent: llm_activation(agent, settings),
    )


NO_KEY = Settings()
GROQ_KEY = Settings(Llama=LlamaSettings(ApiKey="gsk_live_0123456789"))


def test_llm_agents_are_listed_inactive_with_the_setting_to_configure() -> None:
    uow = FakeUnitOfWorkFactory()
    _seed_llm(uow, NO_KEY)
    llms = _llm_agents(uow)
    assert set(llms) == {"Llama 3.3 70B (Groq)", "Llama 3.1 8B (Groq)"}
    for agent in llms.values():
        assert agent.active is False
        assert (agent.inactive_reason or "").startswith("not configured: Llama__ApiKey is not set")
        assert agent.id in uow.state.portfolios  # listed on the leaderboard with its starting cash
    assert all(a.active for a in uow.state.agents.values() if a.provider == "baseline")


def test_a_key_added_later_activates_the_llm_agents_and_removing_it_deactivates_them() -> None:
    uow = FakeUnitOfWorkFactory()
    _seed_llm(uow, NO_KEY)
    _seed_llm(uow, GROQ_KEY)
    assert {(a.active, a.inactive_reason) for a in _llm_agents(uow).values()} == {(True, None)}

    _seed_llm(uow, NO_KEY)
    for agent in _llm_agents(uow).values():
        assert agent.active is False
        assert (agent.inactive_reason or "").startswith("not configured: Llama__ApiKey is not set")


def test_an_operator_deactivation_of_an_llm_agent_survives_a_reseed_with_a_key() -> None:
    uow = FakeUnitOfWorkFactory()
    _seed_llm(uow, GROQ_KEY)
    agent = _llm_agents(uow)["Llama 3.1 8B (Groq)"]
    uow.state.agents[agent.id] = replace(agent, active=False, inactive_reason="too many invalid answers")
    _seed_llm(uow, GROQ_KEY)
    _seed_llm(uow, NO_KEY)
    _seed_llm(uow, GROQ_KEY)
    assert _llm_agents(uow)["Llama 3.1 8B (Groq)"].inactive_reason == "too many invalid answers"
    assert _llm_agents(uow)["Llama 3.3 70B (Groq)"].active is True


def test_an_unprefixed_reason_is_marked_automatic_so_the_next_seed_can_undo_it() -> None:
    uow = FakeUnitOfWorkFactory()
    _seed_llm(uow, GROQ_KEY)
    seed(uow_factory=uow, rules=RULES, llm_activation=lambda agent: (False, "server down"))
    assert {a.inactive_reason for a in _llm_agents(uow).values()} == {"not available: server down"}
    _seed_llm(uow, GROQ_KEY)
    assert all(a.active for a in _llm_agents(uow).values())
    assert all(a.active for a in uow.state.agents.values() if a.provider == "baseline")  # never touched
