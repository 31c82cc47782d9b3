"""Use case: run one decision cycle for every active agent on one frozen market snapshot (DESIGN.md section 3)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.correlation import correlated
from shared.domain.model import Agent, AgentDecision, Portfolio
from shared.domain.rules import ExecutionResult, RaceRules, execute_orders
from shared.domain.snapshot import MarketSnapshot
from shared.services.deciding import (  # re-exported: the decision step lived here
    VOLUNTARY_HOLD,
    decide_all,
    decide_as_completed,
    decision_record,
    hold_reason,
)
from shared.services.ports import (
    AgentClientFactory,
    CycleMetrics,
    DuplicateDecisionError,
    UnitOfWork,
    UnitOfWorkFactory,
    VersionedPortfolio,
)

__all__ = [
    "NO_MARKET_DATA",
    "PORTFOLIO_WRITE_ATTEMPTS",
    "RECORD_RETRY_DELAYS",
    "VOLUNTARY_HOLD",
    "CycleReport",
    "decide_all",
    "decide_as_completed",
    "decision_record",
    "hold_reason",
    "run_cycle",
]

logger = logging.getLogger(__name__)

NO_MARKET_DATA = "no market data"
RECORD_RETRY_DELAYS = (0.5, 2.0, 8.0)  # seconds before each new try of a failed decision write
PORTFOLIO_WRITE_ATTEMPTS = 5  # a versioned portfolio write that keeps losing to concurrent writers gives up


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
