"""The decision step the live cycle and the backtest share: ask every agent for its decision on one snapshot
(model calls concurrent, each under a deadline; any failure a HOLD with its reason), and turn a decision into
the record that is stored."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from shared.correlation import correlated
from shared.domain.audit import bounded_text
from shared.domain.model import Agent, AgentDecision, Order, Portfolio
from shared.domain.rules import ExecutionResult, RaceRules
from shared.domain.snapshot import MarketSnapshot
from shared.services.decision_inputs import SnapshotWindow, with_inputs
from shared.services.ports import AgentClientFactory, AgentContext, AgentModelClient, DecisionRecord

logger = logging.getLogger("shared.services.cycle")  # the name operators filter the cycle's logs by

VOLUNTARY_HOLD = "model chose to hold"


async def decide_all(
    agents: Sequence[Agent],
    clients: AgentClientFactory,
    snapshot: MarketSnapshot,
    portfolios: Mapping[int, Portfolio],
    rules: RaceRules,
    *,
    timeout_s: float,
    max_concurrency: int,
) -> dict[int, AgentDecision]:
    """Every agent's decision on one snapshot, in the agents' order; never raises (see `decide_as_completed`)."""
    decided: dict[int, AgentDecision] = {}
    batches = decide_as_completed(
        agents, clients, snapshot, portfolios, rules, timeout_s=timeout_s, max_concurrency=max_concurrency
    )
    async with aclosing(batches):
        async for batch in batches:
            decided.update(batch)
    return {agent.id: decided[agent.id] for agent in agents}


async def decide_as_completed(
    agents: Sequence[Agent],
    clients: AgentClientFactory,
    snapshot: MarketSnapshot,
    portfolios: Mapping[int, Portfolio],
    rules: RaceRules,
    *,
    timeout_s: float,
    max_concurrency: int,
) -> AsyncGenerator[dict[int, AgentDecision]]:
    """Every agent's decision on one snapshot, in batches as they are made: first every instant client's, then
    each model's as soon as it answers (with any that finished at the same time). Never raises: a failure
    becomes a HOLD with its reason, and each agent's outcome is independent of the others'.

    Model calls, the slow part of a cycle, run concurrently (bounded, each under a deadline) and keep running
    while the caller records a batch. A client that decides synchronously (`InstantAgentModelClient`: the
    baselines, microseconds of pure computation) is called directly: a task and a deadline around it would
    cost more than the decision, and could not interrupt it anyway."""
    decided: dict[int, AgentDecision] = {}
    remote: list[tuple[Agent, AgentModelClient, AgentContext]] = []

    window = SnapshotWindow.of(snapshot)

    def inputs_kept(agent: Agent, decision: AgentDecision, client: object | None) -> AgentDecision:
        """The decision with the context it was made in, for replay (shared.services.replay)."""
        portfolio = portfolios[agent.id]
        return with_inputs(decision, agent=agent, window=window, portfolio=portfolio, rules=rules, client=client)

    for agent in agents:
        context = AgentContext(agent, snapshot.cycle_time, snapshot, portfolios[agent.id].copy(), rules)
        with correlated(agent_id=agent.id):  # the agent's logs carry its id
            started = time.perf_counter()
            client: AgentModelClient | None = None
            try:
                client = clients(agent)
                decide_now = getattr(client, "decide_now", None)
                if decide_now is None:
                    remote.append((agent, client, context))
                    continue
                decided[agent.id] = inputs_kept(agent, _checked(agent, decide_now(context), started), client)
            except Exception as exc:
                fallback = _fallback(agent, f"error: {type(exc).__name__}: {exc}", started)
                decided[agent.id] = inputs_kept(agent, fallback, client)
    if decided:
        yield decided
    if not remote:
        return
    semaphore = asyncio.Semaphore(max_concurrency)

    async def decide(agent: Agent, client: AgentModelClient, context: AgentContext) -> tuple[int, AgentDecision]:
        async with semaphore:  # the deadline starts once the agent gets a slot, not while it queues
            with correlated(agent_id=agent.id):  # each agent's task has its own context
                decision = await _guarded_decision(agent, client, context, timeout_s)
                return agent.id, inputs_kept(agent, decision, client)

    running = {asyncio.ensure_future(decide(*call)) for call in remote}
    try:
        while running:
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            yield dict(task.result() for task in done)  # _guarded_decision never raises
    finally:
        for task in running:  # the caller gave up (its own error, a cancelled job): stop the model calls
            task.cancel()


async def _guarded_decision(
    agent: Agent, client: AgentModelClient, context: AgentContext, timeout_s: float
) -> AgentDecision:
    """The client's decision, or a HOLD whose reason says what went wrong. Never raises."""
    started = time.perf_counter()
    try:
        decision = await asyncio.wait_for(client.decide(context), timeout=timeout_s)
    except TimeoutError:
        return _fallback(agent, f"timeout after {timeout_s:g}s", started)
    except Exception as exc:
        return _fallback(agent, f"error: {type(exc).__name__}: {exc}", started)
    return _checked(agent, decision, started)


def _checked(agent: Agent, decision: object, started: float) -> AgentDecision:
    problem = _invalid_decision(decision)
    if problem is None:
        assert isinstance(decision, AgentDecision)
        return decision
    return _fallback(agent, f"invalid decision: {problem}", started)


def _fallback(agent: Agent, reason: str, started: float) -> AgentDecision:
    latency_ms = (time.perf_counter() - started) * 1000
    logger.warning("agent %d (%s) falls back to HOLD: %s", agent.id, agent.name, reason)
    return AgentDecision.hold(reason, latency_ms=latency_ms)


def _invalid_decision(decision: object) -> str | None:
    if not isinstance(decision, AgentDecision):
        return f"expected AgentDecision, got {type(decision).__name__}"
    if not isinstance(decision.orders, tuple) or not all(isinstance(o, Order) for o in decision.orders):
        return "orders must be a tuple of Order"
    for order in decision.orders:
        for size in (order.quantity, order.notional_usd):
            if size is not None and not isinstance(size, Decimal):
                return f"order size must be Decimal, got {type(size).__name__}"
    return None


def decision_record(
    agent_id: int,
    snapshot: MarketSnapshot,
    decision: AgentDecision,
    result: ExecutionResult,
    staleness_s: float | None,
) -> DecisionRecord:
    """What is stored for one agent's decision in a cycle, with what executing it did."""
    return DecisionRecord(
        agent_id=agent_id,
        cycle_time=snapshot.cycle_time,
        snapshot_sha256=snapshot.sha256,
        decision=_bounded(decision),
        trades=result.trades,
        rejections=decision.rejections + result.rejections,  # the parser's, then the rules'
        data_staleness_seconds=staleness_s,
        decided_at=datetime.now(UTC),
    )


def _bounded(decision: AgentDecision) -> AgentDecision:
    """The decision with its audit texts bounded (`shared.domain.audit`): whatever a model or its endpoint
    sends, what is stored is an excerpt plus the full length and hash."""
    reasoning = bounded_text(decision.reasoning) or ""
    prompt, raw_response = bounded_text(decision.prompt), bounded_text(decision.raw_response)
    if (reasoning, prompt, raw_response) == (decision.reasoning, decision.prompt, decision.raw_response):
        return decision
    return replace(decision, reasoning=reasoning, prompt=prompt, raw_response=raw_response)


def hold_reason(decision: AgentDecision) -> str | None:
    """Why the decision holds (the fallback's reason, or the model's own choice), None when it orders."""
    return None if decision.orders else decision.hold_reason or VOLUNTARY_HOLD
