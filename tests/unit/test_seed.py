"""Seeding the race: default assets and one agent per baseline, idempotently."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from shared.adapters.agents.baselines import STRATEGIES, build_baseline
from shared.domain.model import Agent
from shared.domain.rules import RaceRules
from shared.services.seed import (
    CUSTOM_ML_NOT_CONFIGURED,
    CUSTOM_ML_UNAVAILABLE,
    DEFAULT_ASSETS,
    DEFAULT_BASELINE_AGENTS,
    seed,
)
from tests.fakes import FakeUnitOfWorkFactory

RULES = RaceRules(starting_cash=Decimal(50_000))


def test_seed_adds_assets_agents_and_portfolios() -> None:
    uow = FakeUnitOfWorkFactory()
    report = seed(uow_factory=uow, rules=RULES)
    assert report.as_dict() == {"assets_added": 5, "agents_added": 6, "portfolios_created": 6}
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
