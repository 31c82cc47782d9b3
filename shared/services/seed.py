"""Use case: seed the race with its default assets and agents (idempotent); keep the availability of the ML
and LLM agents in step with what is configured."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.domain.model import Agent, AgentProvider, Asset, Portfolio
from shared.domain.rules import RaceRules
from shared.services.ports import AgentRepository, UnitOfWorkFactory

logger = logging.getLogger(__name__)

DEFAULT_ASSETS: tuple[Asset, ...] = (
    Asset("BTC", "Bitcoin", "bitcoin"),
    Asset("ETH", "Ethereum", "ethereum"),
    Asset("SOL", "Solana", "solana"),
    Asset("XRP", "XRP", "ripple"),
    Asset("BNB", "BNB", "binancecoin"),
)


def _baseline(name: str, model: str, strategy: str, **params: Any) -> Agent:
    # id 0: the repository assigns the real id on add.
    return Agent(id=0, name=name, provider=AgentProvider.BASELINE, model=model, strategy=strategy, params=params)


DEFAULT_BASELINE_AGENTS: tuple[Agent, ...] = (
    _baseline(
        "Buy & Hold BTC", "buy_and_hold", "Buys BTC with all its cash on day one, then never trades.", symbol="BTC"
    ),
    _baseline(
        "Momentum 24h",
        "momentum",
        "Buys the two assets up most over 24 hours, equally weighted; sells holdings that turned down.",
        lookback=24,
        top_n=2,
        min_momentum="0.01",
    ),
    _baseline(
        "Mean Reversion 24h",
        "mean_reversion",
        "Buys assets two standard deviations below their 24-hour mean; sells them one above it.",
        window=24,
        entry_z="2",
        exit_z="1",
        position_fraction="0.25",
    ),
    _baseline(
        "Random Trader",
        "random",
        "Trades a random asset about a third of the time (seeded, so every cycle is reproducible).",
        seed=42,
        trade_probability="0.3",
    ),
    _baseline("Always Hold", "always_hold", "Keeps its starting cash: the zero line every agent must beat."),
    # Added after the first races: a re-seed adds it to a race under way, where it joins at the next cycle
    # with the starting cash (its statistics then cover its own, shorter, history).
    _baseline(
        "Equal-Weight Buy & Hold",
        "equal_weight",
        "Splits its cash equally across every race asset on day one, then never trades: the whole market.",
    ),
)

# Baseline models that serve as controls: every agent's excess return is tested against each of them
# (the buy-and-hold control is the BTC one seeded above).
CONTROL_MODELS: frozenset[str] = frozenset({"buy_and_hold", "equal_weight", "always_hold", "random"})


# Every automatic deactivation of the ML agent starts with this, so a re-seed can tell it from an operator's.
CUSTOM_ML_UNAVAILABLE = "ML service not available: "
CUSTOM_ML_NOT_CONFIGURED = CUSTOM_ML_UNAVAILABLE + "CustomMlAgent__BaseUrl is not set (`make run` starts ml_service)"

CUSTOM_ML_AGENT = Agent(
    id=0,
    name="Custom ML",
    provider=AgentProvider.CUSTOM_ML,
    model="direction-mlp",
    strategy="Our PyTorch model (ml_service) predicts each asset's next-hour direction; buys its most confident "
    "risers, sells holdings it expects to fall.",
    active=False,
    inactive_reason=CUSTOM_ML_NOT_CONFIGURED,
)
DEFAULT_AGENTS: tuple[Agent, ...] = (*DEFAULT_BASELINE_AGENTS, CUSTOM_ML_AGENT)

LLM_PROVIDERS = frozenset({AgentProvider.LLAMA, AgentProvider.OPENAI, AgentProvider.AZURE_OPENAI})
# Every automatic deactivation of an LLM agent starts with one of these ("not configured: Llama__ApiKey is not
# set ...", "not available: the local llama.cpp server did not start ..."); any other reason is an operator's.
LLM_UNAVAILABLE_PREFIXES = ("not configured", "not available")
LlmActivation = Callable[[Agent], tuple[bool, str | None]]
"""(active, inactive_reason) of an LLM agent under the current configuration."""


@dataclass(frozen=True, slots=True)
class SeedReport:
    assets_added: int
    agents_added: int
    portfolios_created: int

    def as_dict(self) -> dict[str, int]:
        return {
            "assets_added": self.assets_added,
            "agents_added": self.agents_added,
            "portfolios_created": self.portfolios_created,
        }


def seed(
    *,
    uow_factory: UnitOfWorkFactory,
    rules: RaceRules,
    assets: tuple[Asset, ...] = DEFAULT_ASSETS,
    agents: tuple[Agent, ...] = DEFAULT_AGENTS,
    custom_ml_url: str | None = None,
    custom_ml_unavailable: str = CUSTOM_ML_NOT_CONFIGURED,
    llm_activation: LlmActivation | None = None,
) -> SeedReport:
    """Add missing default assets and agents (matched by symbol and by name) and give every agent without a
    portfolio its starting cash. Running it again changes nothing; existing rows are never overwritten, so an
    operator's edits (a deactivated asset or agent) survive a re-seed.

    The one exception is the availability of `custom_ml` agents, which follows the ML service: active when
    `custom_ml_url` is set, otherwise inactive with `custom_ml_unavailable` as the reason. An agent an operator
    deactivated for another reason stays inactive.

    Likewise, with `llm_activation`, LLM agents follow their provider's configuration: a key added after the
    first seed activates them, a key removed deactivates them with the reason. An operator's deactivation
    (any reason not starting with one of `LLM_UNAVAILABLE_PREFIXES`) is left alone."""
    with uow_factory() as uow:
        known_symbols = {a.symbol for a in uow.assets.list(active_only=False)}
        new_assets = [a for a in assets if a.symbol not in known_symbols]
        for asset in new_assets:
            uow.assets.upsert(asset)
        new_agents = [uow.agents.add(a) for a in agents if uow.agents.get_by_name(a.name) is None]
        for agent in uow.agents.list(active_only=False):
            if agent.provider == AgentProvider.CUSTOM_ML:
                _follow_ml_service(uow.agents, agent, custom_ml_url, custom_ml_unavailable)
            elif llm_activation is not None and agent.provider in LLM_PROVIDERS:
                _follow_llm_configuration(uow.agents, agent, llm_activation)
        portfolios_created = 0
        for agent in uow.agents.list(active_only=False):
            if uow.portfolios.get(agent.id) is None:
                uow.portfolios.save(Portfolio(agent.id, rules.starting_cash))
                portfolios_created += 1
        uow.commit()
    report = SeedReport(len(new_assets), len(new_agents), portfolios_created)
    logger.info("seeded: %s", report.as_dict())
    return report


def _follow_ml_service(agents: AgentRepository, agent: Agent, url: str | None, unavailable: str) -> None:
    automatic = agent.active or (agent.inactive_reason or "").startswith(CUSTOM_ML_UNAVAILABLE)
    if not automatic:
        return
    reason = unavailable if unavailable.startswith(CUSTOM_ML_UNAVAILABLE) else CUSTOM_ML_UNAVAILABLE + unavailable
    if url is not None and not agent.active:
        agents.set_active(agent.id, active=True, reason=None)
        logger.info("agent %s is active: ML service at %s", agent.name, url)
    elif url is None and (agent.active or agent.inactive_reason != reason):
        agents.set_active(agent.id, active=False, reason=reason)
        logger.info("agent %s is inactive: %s", agent.name, reason)


def _follow_llm_configuration(agents: AgentRepository, agent: Agent, activation: LlmActivation) -> None:
    if not (agent.active or (agent.inactive_reason or "").startswith(LLM_UNAVAILABLE_PREFIXES)):
        return
    active, reason = activation(agent)
    if active:
        reason = None
    elif not (reason or "").startswith(LLM_UNAVAILABLE_PREFIXES):
        reason = f"not available: {reason or 'no reason given'}"  # so the next seed still recognises it
    if (agent.active, agent.inactive_reason) != (active, reason):
        agents.set_active(agent.id, active=active, reason=reason)
        logger.info("agent %s is %s", agent.name, "active" if active else f"inactive: {reason}")
