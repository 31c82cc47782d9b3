"""The replay inputs a cycle attaches to every decision it makes (see `shared.domain.decision_inputs`).

This runs for every decision of a year-long backtest (43,800 for five baselines), so what is the same for every
agent of a cycle (the snapshot's window) is computed once per cycle, and a client's description once per
client and agent.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from shared.domain.decision_inputs import DecisionInputs
from shared.domain.model import Agent, AgentDecision, Portfolio
from shared.domain.rules import RaceRules
from shared.domain.snapshot import MarketSnapshot


@dataclass(frozen=True, slots=True)
class SnapshotWindow:
    """Which stored candles rebuild a snapshot: its symbols, their interval, the longest symbol's count."""

    symbols: tuple[str, ...]
    interval: str
    candles: int

    @classmethod
    def of(cls, snapshot: MarketSnapshot) -> SnapshotWindow:
        rows = snapshot.candles.values()
        interval = next(iter(rows))[0].interval if rows else ""
        return cls(tuple(snapshot.candles), interval, max((len(r) for r in rows), default=0))


# Per client: (the agent it was described for, the description). Weak: a client dropped by its registry (an
# edited agent, a replay's own registry) takes its entry with it.
_DESCRIBED: weakref.WeakKeyDictionary[Any, tuple[Agent, dict[str, Any]]] = weakref.WeakKeyDictionary()


def model_settings(agent: Agent, client: object | None) -> dict[str, Any]:
    """The agent's provider, model and params, and what its client says it calls the model with
    (`model_settings()`, optional on a client: the baselines, LLM and ML clients have it). Read-only: the
    same dict is returned for the same client and agent."""
    try:
        entry = _DESCRIBED.get(client)
    except TypeError:  # None, or a client that cannot be weakly referenced or hashed: described every time
        entry = None
    if entry is not None and entry[0] == agent:
        return entry[1]
    settings: dict[str, Any] = {"provider": agent.provider, "model": agent.model, "params": dict(agent.params)}
    describe = getattr(client, "model_settings", None)
    if callable(describe):
        try:
            settings["client"] = describe()
        except Exception as exc:  # a description must never cost the decision
            settings["client"] = {"error": type(exc).__name__}
    with contextlib.suppress(TypeError):
        _DESCRIBED[client] = (agent, settings)
    return settings


def with_inputs(
    decision: AgentDecision,
    *,
    agent: Agent,
    window: SnapshotWindow,
    portfolio: Portfolio,
    rules: RaceRules,
    client: object | None,
) -> AgentDecision:
    """`decision` carrying the context it was made in. `portfolio` is the agent's portfolio before the decision
    (the cycle's own, never the copy the client was handed and might have changed)."""
    inputs = DecisionInputs(
        portfolio.copy(), rules, window.symbols, window.interval, window.candles, model_settings(agent, client)
    )
    d = decision  # spelled out: dataclasses.replace costs three times as much on this hot path
    return AgentDecision(
        d.orders,
        d.reasoning,
        d.confidence,
        d.hold_reason,
        d.prompt,
        d.raw_response,
        d.latency_ms,
        d.prompt_tokens,
        d.completion_tokens,
        d.cost_usd,
        d.rejections,
        inputs,
    )
