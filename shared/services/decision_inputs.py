"""The replay inputs a cycle attaches to every decision it makes (see `shared.domain.decision_inputs`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.domain.decision_inputs import DecisionInputs
from shared.domain.model import Agent, AgentDecision, Portfolio
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot


def model_settings(agent: Agent, client: object | None) -> dict[str, Any]:
    """The agent's provider, model and params, and what its client says it calls the model with
    (`model_settings()`, optional on a client: the baselines, LLM and ML clients have it)."""
    settings: dict[str, Any] = {"provider": agent.provider, "model": agent.model, "params": dict(agent.params)}
    describe = getattr(client, "model_settings", None)
    if callable(describe):
        try:
            settings["client"] = describe()
        except Exception as exc:  # a description must never cost the decision
            settings["client"] = {"error": f"{type(exc).__name__}"}
    return settings


def with_inputs(
    decision: AgentDecision,
    *,
    agent: Agent,
    snapshot: MarketSnapshot,
    portfolio: Portfolio,
    rules: RaceRules,
    client: object | None,
) -> AgentDecision:
    """`decision` carrying the context it was made in. `portfolio` is the agent's portfolio before the decision
    (the cycle's own, never the copy the client was handed and might have changed)."""
    rows = snapshot.candles.values()
    inputs = DecisionInputs(
        portfolio=portfolio.copy(),
        rules=rules,
        symbols=tuple(snapshot.candles),
        interval=next(iter(rows))[0].interval if rows else "",
        candles=max((len(r) for r in rows), default=0),
        model=model_settings(agent, client),
    )
    return replace(decision, inputs=inputs)
