"""Use case: run one decision cycle for every active agent on one frozen market snapshot (DESIGN.md section 3)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.correlation import correlated
from shared.domain.audit import bounded_text
from shared.domain.model import Agent, AgentDecision, Order, Portfolio
from shared.domain.rules import ExecutionResult, RaceRules, execute_orders
from shared.domain.snapshot import MarketSnapshot
from shared.services.decision_inputs import SnapshotWindow, with_inputs
from shared.services.ports import (
    AgentClientFactory,
    AgentContext,
    AgentModelClient,
    CycleMetrics,
    DecisionRecord,
    DuplicateDecisionError,
    UnitOfWork,
    UnitOfWorkFactory,
    VersionedPortfolio,
)

logger = logging.getLogger(__name__)

NO_MARKET_DATA = "no market data"
RECORD_RETRY_DELAYS = (0.5, 2.0, 8.0)  # seconds before each new try of a failed decision write
PORTFOLIO_WRITE_ATTEMPTS = 5  # a versioned portfolio write that keeps losing to concurrent writers gives up
VOLUNTARY_HOLD = "model chose to hold"


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did. `skipped` counts agents already decided (an idempotent re-run or a concurrent run);
    `failed` names agents whose decision could not be written; `holds` counts HOLD decisions by reason."""

    cycle_time: datetime
    snapshot_sha256: str | None
    agents: int
    decided: int
    skipped: int
    holds: Mapping[str, int]
    trades: int
    rejections: int
    duration_ms: float
    failed: tuple[int, ...] = ()
    note: str | None = None
    data_staleness_seconds: float | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycle_time": self.cycle_time.isoformat(),
            "snapshot_sha256": self.snapshot_sha256,
            "agents": self.agents,
            "decided": self.decided,
            "skipped": self.skipped,
            "failed": list(self.failed),
            "holds": dict(self.holds),
            "trades": self.trades,
            "rejections": self.rejections,
            "duration_ms": round(self.duration_ms, 1),
            "data_staleness_seconds": self.data_staleness_seconds,
            "note": self.note,
        }


async def run_cycle(
    *,
    uow_factory: UnitOfWorkFactory,
    clients: AgentClientFactory,
    cycle_time: datetime,
    rules: RaceRules,
    interval: str,
    snapshot_candles: int,
    agent_timeout_s: float,
    max_concurrency: int,
    metrics: CycleMetrics | None = None,
    answers: dict[int, AgentDecision] | None = None,
    record_retry_delays: Sequence[float] = RECORD_RETRY_DELAYS,
) -> CycleReport:
    """Ask every active, not-yet-decided agent for a decision on one snapshot (concurrently, bounded, each
    under a deadline), and execute and record each decision in its own transaction as soon as it is made: an
    agent that answers fast (a baseline, a quick model) is recorded at once, never after one that hangs. The
    cycle ends when every agent's outcome is recorded, so by the slowest agent's deadline. Any model failure
    becomes a recorded HOLD with its reason; re-running a cycle changes nothing.

    A write that fails is tried again after each of `record_retry_delays` with the answer already received;
    if it still fails, a HOLD with the reason and the answer's audit trail is recorded instead. `answers`
    (agent id -> decision) keeps the answers across runs of the job: an agent answered in an earlier,
    failed run is not asked (and paid for) again."""
    if cycle_time.tzinfo is None:
        raise ValueError("naive cycle_time: cycles are identified by a UTC-aware time")
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    started_at = datetime.now(UTC)
    started = time.perf_counter()

    # Database work runs in a worker thread: the event loop keeps serving (HTTP, other agents) meanwhile.
    loaded = await asyncio.to_thread(_load, uow_factory, cycle_time, rules, interval, snapshot_candles)
    active, pending, snapshot, stored, portfolios = loaded
    skipped = len(active) - len(pending)

    def report(**values: Any) -> CycleReport:
        defaults: dict[str, Any] = {
            "cycle_time": cycle_time,
            "snapshot_sha256": snapshot.sha256 if snapshot.candles else None,
            "agents": len(active),
            "decided": 0,
            "skipped": skipped,
            "holds": {},
            "trades": 0,
            "rejections": 0,
            "duration_ms": (time.perf_counter() - started) * 1000,
        }
        result = CycleReport(**(defaults | values))
        if logger.isEnabledFor(logging.INFO):  # the JSON is built only for a log that is written
            logger.info("cycle finished %s", json.dumps(result.as_dict(), sort_keys=True))
        return result

    if not snapshot.candles:
        logger.warning("cycle %s: no candles closed at or before it; nothing recorded", cycle_time.isoformat())
        return report(note=NO_MARKET_DATA)
    if not pending:
        # A run killed between its last decision and the cycle's summary row left the cycle without its row:
        # the re-run writes it (the race's clock resumes from the latest recorded cycle; a gap would skip one).
        await asyncio.to_thread(
            _record_missing_cycle, uow_factory, cycle_time, snapshot.sha256, len(active), started_at
        )
        return report(note="every active agent had already decided this cycle")

    staleness = snapshot.staleness()
    staleness_s = staleness.total_seconds() if staleness is not None else None
    answers = {} if answers is None else answers
    written = _Written()

    def record(ready: Sequence[Agent], batch: Mapping[int, AgentDecision]) -> None:
        done = _record_decisions(uow_factory, ready, batch, stored, snapshot, rules, staleness_s, metrics)
        done = _retry_failed(
            done, record_retry_delays, uow_factory, ready, batch, snapshot, rules, staleness_s, metrics
        )
        written.add(done)

    known = [agent for agent in pending if agent.id in answers]
    if known:  # answered in an earlier run of this job whose write failed: recorded, not asked again
        await asyncio.to_thread(record, known, {agent.id: answers[agent.id] for agent in known})
    to_ask = [agent for agent in pending if agent.id not in answers]
    batches = decide_as_completed(
        to_ask, clients, snapshot, portfolios, rules, timeout_s=agent_timeout_s, max_concurrency=max_concurrency
    )
    async with aclosing(batches):
        async for batch in batches:  # one thread hop per batch of decisions made together, in id order
            answers.update(batch)
            await asyncio.to_thread(record, [agent for agent in to_ask if agent.id in batch], batch)
    await asyncio.to_thread(
        _record_cycle,
        uow_factory,
        cycle_time=cycle_time,
        snapshot_sha256=snapshot.sha256,
        agents=len(active),
        started_at=started_at,
    )
    return report(
        decided=written.decided,
        skipped=skipped + written.duplicates,
        holds=dict(written.holds),
        trades=written.trades,
        rejections=written.rejections,
        failed=tuple(written.failed),
        data_staleness_seconds=staleness_s,
    )


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


def _load(
    uow_factory: UnitOfWorkFactory, cycle_time: datetime, rules: RaceRules, interval: str, snapshot_candles: int
) -> tuple[list[Agent], list[Agent], MarketSnapshot, dict[int, VersionedPortfolio], dict[int, Portfolio]]:
    """Active agents, the pending ones (not decided yet), the snapshot, the pending agents' stored portfolios
    (with their versions) and their portfolios (starting cash for an agent without a stored one)."""
    with uow_factory() as uow:
        active = uow.agents.list(active_only=True)
        already_decided = uow.decisions.decided_agent_ids(cycle_time)
        pending = sorted((a for a in active if a.id not in already_decided), key=lambda a: a.id)
        symbols = [asset.symbol for asset in uow.assets.list(active_only=True)]
        snapshot = MarketSnapshot.build(
            cycle_time, uow.candles.window(symbols, interval, at=cycle_time, count=snapshot_candles)
        )
        stored = uow.portfolios.get_many_versioned(a.id for a in pending) if snapshot.candles and pending else {}
    portfolios = {
        a.id: found.portfolio if (found := stored.get(a.id)) else Portfolio(a.id, rules.starting_cash) for a in pending
    }
    return active, pending, snapshot, stored, portfolios


@dataclass(slots=True)
class _Written:
    decided: int = 0
    duplicates: int = 0
    trades: int = 0
    rejections: int = 0
    holds: Counter[str] = field(default_factory=Counter)
    failed: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # why each failed agent's write failed

    def merged(self, retry: _Written) -> _Written:
        """This pass's counts plus a retry of its failed agents (whose outcome replaces theirs)."""
        return _Written(
            decided=self.decided + retry.decided,
            duplicates=self.duplicates + retry.duplicates,
            trades=self.trades + retry.trades,
            rejections=self.rejections + retry.rejections,
            holds=self.holds + retry.holds,
            failed=list(retry.failed),
            errors=dict(retry.errors),
        )

    def add(self, batch: _Written) -> None:
        """Add the outcome of another batch of agents (a cycle records its decisions as they are made)."""
        self.decided += batch.decided
        self.duplicates += batch.duplicates
        self.trades += batch.trades
        self.rejections += batch.rejections
        self.holds += batch.holds
        self.failed.extend(batch.failed)
        self.errors.update(batch.errors)


def _record_decisions(
    uow_factory: UnitOfWorkFactory,
    pending: Sequence[Agent],
    decisions: Mapping[int, AgentDecision],
    stored: Mapping[int, VersionedPortfolio],
    snapshot: MarketSnapshot,
    rules: RaceRules,
    staleness_s: float | None,
    metrics: CycleMetrics | None = None,
) -> _Written:
    """Execute and record each decision, sequentially and in id order: one short transaction per agent.
    A concurrent writer's change is never overwritten: the portfolio read at load time is replaced only if
    its version is unchanged, and otherwise read again and the orders executed on what is stored now."""
    prices, stale = snapshot.last_prices, snapshot.stale_prices(rules.max_price_age)
    written = _Written()
    for agent in pending:
        decision = decisions[agent.id]
        try:
            with correlated(agent_id=agent.id), uow_factory() as uow:
                try:
                    result = _execute(uow, stored.get(agent.id), agent.id, decision, prices, rules, stale)
                    uow.decisions.add(decision_record(agent.id, snapshot, decision, result, staleness_s))
                    uow.commit()
                except Exception:
                    uow.rollback()
                    raise
        except DuplicateDecisionError:
            written.duplicates += 1  # a concurrent run of this cycle got there first: its decision stands
            continue
        except Exception as exc:
            logger.exception(
                "cycle %s: could not record agent %d's decision", snapshot.cycle_time.isoformat(), agent.id
            )
            written.failed.append(agent.id)
            written.errors[agent.id] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        written.decided += 1
        written.trades += len(result.trades)
        written.rejections += len(decision.rejections) + len(result.rejections)
        if (reason := hold_reason(decision)) is not None:
            written.holds[reason] += 1
        if metrics is not None:
            try:
                metrics.decision_recorded(agent, decision, trades=len(result.trades))
            except Exception:  # telemetry must never cost a decision
                logger.exception("could not record the metrics of agent %d's decision", agent.id)
    return written


def _retry_failed(
    written: _Written,
    delays: Sequence[float],
    uow_factory: UnitOfWorkFactory,
    pending: Sequence[Agent],
    decisions: Mapping[int, AgentDecision],
    snapshot: MarketSnapshot,
    rules: RaceRules,
    staleness_s: float | None,
    metrics: CycleMetrics | None,
) -> _Written:
    """Write the failed agents' decisions again (their answers are kept: nobody is asked twice), after each
    delay; then, for those still failing, a HOLD that keeps the answer's audit trail and says why."""
    for delay in (*delays, None):
        if not written.failed:
            break
        retry = [agent for agent in pending if agent.id in set(written.failed)]
        if delay is None:  # the last try: a HOLD with the reason (a bad decision must not stay unrecorded)
            decisions = {a.id: _unrecordable(decisions[a.id], written.errors.get(a.id, "?")) for a in retry}
        else:
            time.sleep(delay)
        again = _record_decisions(uow_factory, retry, decisions, {}, snapshot, rules, staleness_s, metrics)
        written = written.merged(again)
    return written


def _unrecordable(decision: AgentDecision, error: str) -> AgentDecision:
    audit = {
        name: getattr(decision, name)
        for name in ("prompt", "raw_response", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "inputs")
    }
    return AgentDecision.hold(f"error: could not record the decision: {error}"[:500], **audit)


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


def _execute(
    uow: UnitOfWork,
    stored: VersionedPortfolio | None,
    agent_id: int,
    decision: AgentDecision,
    prices: Mapping[str, Decimal],
    rules: RaceRules,
    stale: Mapping[str, str] | None = None,
) -> ExecutionResult:
    """Execute the decision's orders on the agent's stored portfolio and write the result, replacing the
    stored portfolio only at the version the orders were executed on (re-read and re-executed otherwise)."""
    for _ in range(PORTFOLIO_WRITE_ATTEMPTS):
        if stored is not None:
            if not decision.orders:  # a hold changes nothing, whatever is stored by now: nothing to write
                return ExecutionResult(stored.portfolio, (), ())
            result = execute_orders(stored.portfolio, decision.orders, prices, rules, stale=stale)
            if uow.portfolios.replace(stored, result.portfolio):
                return result
        # Not loaded, or another writer changed it since: execute on what is stored now, at its version.
        stored = uow.portfolios.get_many_versioned([agent_id]).get(agent_id)
        if stored is None:  # no portfolio yet: this write creates it (a concurrent creator makes it fail)
            portfolio = Portfolio(agent_id, rules.starting_cash)
            result = execute_orders(portfolio, decision.orders, prices, rules, stale=stale)
            uow.portfolios.save(result.portfolio)
            return result
    raise RuntimeError(f"agent {agent_id}'s portfolio kept changing under {PORTFOLIO_WRITE_ATTEMPTS} writes")


def _record_missing_cycle(
    uow_factory: UnitOfWorkFactory, cycle_time: datetime, snapshot_sha256: str, agents: int, started_at: datetime
) -> None:
    with uow_factory() as uow:
        latest = uow.cycles.latest_time()
    if latest is None or latest < cycle_time:
        _record_cycle(
            uow_factory, cycle_time=cycle_time, snapshot_sha256=snapshot_sha256, agents=agents, started_at=started_at
        )


def _record_cycle(
    uow_factory: UnitOfWorkFactory, *, cycle_time: datetime, snapshot_sha256: str, agents: int, started_at: datetime
) -> None:
    """The cycle's summary row, with totals counted from the stored decisions: an earlier partial run's
    decisions and trades count too (the record describes the cycle, not this run)."""
    try:
        with uow_factory() as uow:
            uow.cycles.record_counted(
                cycle_time=cycle_time,
                snapshot_sha256=snapshot_sha256,
                agents=agents,
                started_at=started_at,
                finished_at=datetime.now(UTC),
            )
            uow.commit()
    except Exception:  # the decisions are already committed; a missing summary row must not fail the cycle
        logger.exception("cycle %s: could not record the cycle summary", cycle_time.isoformat())
