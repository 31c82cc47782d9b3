"""Seeding the race: default assets and one agent per baseline, idempotently."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from shared.adapters.agents.baselines import STRATEGIES, build_baseline
from shared.domain.rules import RaceRules
from shared.services.seed import DEFAULT_ASSETS, DEFAULT_BASELINE_AGENTS, seed
from tests.fakes import FakeUnitOfWorkFactory

RULES = RaceRules(starting_cash=Decimal(50_000))


def test_seed_adds_assets_agents_and_portfolios() -> None:
    uow = FakeUnitOfWorkFactory()
    report = seed(uow_factory=uow, rules=RULES)
    assert report.as_dict() == {"assets_added": 5, "agents_added": 5, "portfolios_created": 5}
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
