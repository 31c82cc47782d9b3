"""Use case: rerun a stored decision, on the same model or another, and show the counterfactual beside it.

The decision's context is rebuilt from what was stored with it (shared.domain.decision_inputs): the snapshot
from the stored candles by the cycle's own window query, its sha256 checked against the stored one (a candle
changed since means the model would see other data: refused), the portfolio before the decision, the rules
and the model settings. The agent is built by the race's client factory and asked through the cycle's own
guarded `decide_all` (same deadline, same HOLD fallbacks); its orders go through the rules on a copy of the
portfolio. Nothing is written: no decision, trade, portfolio or equity row.

A counterfactual agent (another agent's model, or a provider and model) sits in the original agent's seat: it
keeps the original agent's id, so a seeded strategy draws as it would have there and ml_service's idempotency
key names that seat, not the other agent's own decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from shared.domain.audit import bounded_text
from shared.domain.decision_inputs import DecisionInputs
from shared.domain.model import Agent, AgentDecision, AgentProvider, Candle, Trade
from shared.domain.money import QUANTUM
from shared.domain.order_records import order_record, rejection_record
from shared.domain.rules import execute_orders
from shared.domain.snapshot import MarketSnapshot
from shared.services.cycle import decide_all
from shared.services.ports import AgentClientFactory


class ReplayError(Exception):
    """A replay that cannot run; `code` is stable for the API and the CLI."""

    code = "replay_refused"


class DecisionNotFoundError(ReplayError, LookupError):
    code = "decision_not_found"


class ReplayAgentError(ReplayError, ValueError):
    """The counterfactual agent asked for does not exist or cannot be named that way."""

    code = "invalid_replay_agent"


class ReplayRefusedError(ReplayError):
    """The decision cannot be rerun exactly (no inputs stored, unreadable inputs)."""

    def __init__(self, message: str, *, code: str = "replay_refused") -> None:
        super().__init__(message)
        self.code = code


class SnapshotMismatchError(ReplayRefusedError):
    """The snapshot rebuilt from the stored candles is not the one the decision was made on."""

    def __init__(self, *, decision_id: int, stored: str, rebuilt: str | None) -> None:
        super().__init__(
            f"decision {decision_id}: the snapshot rebuilt from the stored candles has sha256 {rebuilt or 'none'}, "
            f"the decision was made on {stored}: stored candles changed since, so it cannot be replayed exactly",
            code="snapshot_mismatch",
        )
        self.stored, self.rebuilt = stored, rebuilt


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A recorded decision as replay needs it. Orders, rejections and fills are the stored JSON shapes (exact
    decimal strings); `inputs` is None for a decision recorded without them (`inputs_problem` says why)."""

    id: int
    agent_id: int
    cycle_time: datetime
    snapshot_sha256: str
    reasoning: str
    confidence: float | None
    hold_reason: str | None
    orders: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    prompt: str | None
    inputs: DecisionInputs | None
    inputs_problem: str | None = None


class ReplayStore(Protocol):
    """What a replay reads (never writes): the decision, agents, and candles by the cycle's window rule."""

    def decision(self, decision_id: int) -> StoredDecision | None: ...
    def agent(self, agent_id: int) -> Agent | None: ...
    def candle_window(
        self, symbols: Iterable[str], interval: str, *, at: datetime, count: int
    ) -> dict[str, list[Candle]]: ...


@dataclass(frozen=True, slots=True)
class DecisionOutcome:
    """One side of the comparison: what was (or would have been) decided and executed."""

    orders: list[dict[str, Any]]
    reasoning: str
    confidence: float | None
    hold_reason: str | None
    rejections: list[dict[str, Any]]
    fills: list[dict[str, Any]]

    def same_decision(self, other: DecisionOutcome) -> bool:
        """Same orders, reasoning, confidence and hold reason (what the model answered)."""
        mine = (self.orders, self.reasoning, self.confidence, self.hold_reason)
        return mine == (other.orders, other.reasoning, other.confidence, other.hold_reason)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    decision_id: int
    agent_id: int
    cycle_time: datetime
    snapshot_sha256: str
    original: DecisionOutcome
    counterfactual: DecisionOutcome
    original_model: Mapping[str, Any]
    replay_model: Mapping[str, Any]
    replay_agent_name: str
    latency_ms: float | None
    # None when neither side has a prompt (the baselines); else whether the rebuilt prompt is the stored one.
    prompt_identical: bool | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        return self.original.same_decision(self.counterfactual)

    @property
    def same_model(self) -> bool:
        return dict(self.original_model) == dict(self.replay_model)


async def replay_decision(
    *,
    store: ReplayStore,
    clients: AgentClientFactory,
    decision_id: int,
    agent_id: int | None = None,
    provider: str | None = None,
    model: str | None = None,
    timeout_s: float,
) -> ReplayResult:
    """Rerun decision `decision_id` on its own model, or on agent `agent_id`'s, or on `provider`/`model`'s.

    Raises DecisionNotFoundError, ReplayAgentError (a bad counterfactual), ReplayRefusedError (no inputs kept)
    or SnapshotMismatchError (the stored candles changed). Writes nothing."""
    if agent_id is not None and (provider is not None or model is not None):
        raise ReplayAgentError("give either agent_id or provider and model, not both")
    if (provider is None) != (model is None):
        raise ReplayAgentError("provider and model go together")
    stored = store.decision(decision_id)
    if stored is None:
        raise DecisionNotFoundError(f"decision {decision_id} not found")
    inputs = _inputs_of(stored)
    snapshot = _rebuilt_snapshot(store, stored, inputs)
    seat = store.agent(stored.agent_id)
    if seat is None:  # cannot happen with the foreign key; a clear error all the same
        raise ReplayRefusedError(f"decision {decision_id}'s agent {stored.agent_id} no longer exists")
    agent = _replay_agent(store, seat, inputs, agent_id=agent_id, provider=provider, model=model)

    portfolio = inputs.portfolio
    decisions = await decide_all(
        [agent], clients, snapshot, {agent.id: portfolio}, inputs.rules, timeout_s=timeout_s, max_concurrency=1
    )
    decision = decisions[agent.id]
    executed = execute_orders(portfolio, decision.orders, snapshot.last_prices, inputs.rules)  # a copy: pure
    counterfactual = DecisionOutcome(
        orders=[order_record(o) for o in decision.orders],
        reasoning=bounded_text(decision.reasoning) or "",
        confidence=decision.confidence,
        hold_reason=decision.hold_reason,
        rejections=[rejection_record(r) for r in (*decision.rejections, *executed.rejections)],
        fills=[fill_json(t) for t in executed.trades],
    )
    original = DecisionOutcome(
        orders=stored.orders,
        reasoning=stored.reasoning,
        confidence=stored.confidence,
        hold_reason=stored.hold_reason,
        rejections=stored.rejections,
        fills=stored.fills,
    )
    replay_model = decision.inputs.model if decision.inputs is not None else {}
    return ReplayResult(
        decision_id=stored.id,
        agent_id=stored.agent_id,
        cycle_time=stored.cycle_time,
        snapshot_sha256=snapshot.sha256,
        original=original,
        counterfactual=counterfactual,
        original_model=inputs.model,
        replay_model=replay_model,
        replay_agent_name=agent.name,
        latency_ms=decision.latency_ms,
        prompt_identical=_prompt_identical(stored, decision),
        notes=_notes(inputs.model, replay_model, same_agent=agent_id is None and provider is None),
    )


def _inputs_of(stored: StoredDecision) -> DecisionInputs:
    if stored.inputs is not None:
        return stored.inputs
    reason = stored.inputs_problem or (
        "it was recorded before decisions kept their replay inputs (migration 0007): the portfolio it saw, "
        "its model settings and the rules it ran under are not stored"
    )
    raise ReplayRefusedError(f"decision {stored.id} cannot be replayed exactly: {reason}", code="no_replay_inputs")


def _rebuilt_snapshot(store: ReplayStore, stored: StoredDecision, inputs: DecisionInputs) -> MarketSnapshot:
    """The snapshot as the cycle built it: the same window query (candles closed by the cycle time), hashed."""
    window = store.candle_window(inputs.symbols, inputs.interval, at=stored.cycle_time, count=inputs.candles)
    try:
        snapshot = MarketSnapshot.build(stored.cycle_time, window)
    except ValueError:
        snapshot = None
    if snapshot is None or snapshot.sha256 != stored.snapshot_sha256:
        raise SnapshotMismatchError(
            decision_id=stored.id, stored=stored.snapshot_sha256, rebuilt=snapshot.sha256 if snapshot else None
        )
    return snapshot


def _replay_agent(
    store: ReplayStore,
    seat: Agent,
    inputs: DecisionInputs,
    *,
    agent_id: int | None,
    provider: str | None,
    model: str | None,
) -> Agent:
    """The agent to ask, in the original agent's seat (its id): by default as it was when it decided (provider,
    model and params from the stored settings, whatever the agent row says now)."""
    if agent_id is not None:
        other = store.agent(agent_id)
        if other is None:
            raise ReplayAgentError(f"agent {agent_id} not found")
        return Agent(seat.id, other.name, other.provider, other.model, other.strategy, dict(other.params))
    if provider is not None and model is not None:
        known = sorted(str(p) for p in AgentProvider)
        if provider not in known:
            raise ReplayAgentError(f"unknown provider {provider!r}; known: {', '.join(known)}")
        if not model.strip():
            raise ReplayAgentError("model must not be empty")
        return Agent(seat.id, f"{provider} {model}", provider, model.strip(), "replay counterfactual")
    was = inputs.model
    params = was.get("params")
    return Agent(
        seat.id,
        seat.name,
        str(was.get("provider", seat.provider)),
        str(was.get("model", seat.model)),
        seat.strategy,
        dict(params) if isinstance(params, Mapping) else dict(seat.params),
    )


def _prompt_identical(stored: StoredDecision, decision: AgentDecision) -> bool | None:
    if stored.prompt is None and decision.prompt is None:
        return None
    return bounded_text(decision.prompt) == stored.prompt


def _notes(was: Mapping[str, Any], now: Mapping[str, Any], *, same_agent: bool) -> tuple[str, ...]:
    """What a reader should know when a same-agent replay ran under other model settings than the original."""
    if not same_agent or dict(was) == dict(now):
        return ()
    changed = sorted(_changed_keys(was, now))
    return (f"the model settings differ from the original's ({', '.join(changed)}): the race's configuration changed",)


def _changed_keys(was: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key in sorted(set(was) | set(now)):
        a, b = was.get(key), now.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            keys += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def fill_json(trade: Trade) -> dict[str, Any]:
    """A trade's amounts at the storage scale, in plain notation: the same text whether computed or read back."""

    def amount(value: Decimal) -> str:
        return format(value.quantize(QUANTUM), "f")

    return {
        "symbol": trade.symbol,
        "side": str(trade.side),
        "quantity": amount(trade.quantity),
        "price": amount(trade.price),
        "notional": amount(trade.notional),
        "fee": amount(trade.fee),
    }
