"""The decision cycle: concurrency, fallbacks to HOLD, idempotency and one transaction per agent."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.domain.model import Agent, AgentDecision, Asset, Order, Portfolio, RejectionReason, Side
from shared.domain.rules import RaceRules
from shared.services.cycle import NO_MARKET_DATA, CycleReport, run_cycle
from shared.services.ports import AgentClientFactory, AgentContext, AgentModelClient, DecisionRecord
from tests.fakes import T0, FakeClientFactory, FakeUnitOfWorkFactory, ScriptedClient, candle_series

HOUR = timedelta(hours=1)
CYCLE = T0 + 48 * HOUR
RULES = RaceRules()
BUY_ETH = Order("ETH", Side.BUY, notional_usd=Decimal(1000))


def market() -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(Asset("BTC", "Bitcoin", "bitcoin"), Asset("ETH", "Ethereum", "ethereum"))
    uow.add_candles(candle_series("BTC", [50_000 + i for i in range(60)]))  # 12 of them close after CYCLE
    uow.add_candles(candle_series("ETH", [2_000 + i for i in range(48)]))
    return uow


def cycle(
    uow: FakeUnitOfWorkFactory,
    clients: AgentClientFactory,
    *,
    timeout_s: float = 5.0,
    answers: dict[int, AgentDecision] | None = None,
    retry_delays: tuple[float, ...] = (),
) -> CycleReport:
    return asyncio.run(
        run_cycle(
            uow_factory=uow,
            clients=clients,
            cycle_time=CYCLE,
            rules=RULES,
            interval="1h",
            snapshot_candles=24,
            agent_timeout_s=timeout_s,
            max_concurrency=32,
            answers=answers,
            record_retry_delays=retry_delays,
        )
    )


def agents_with(uow: FakeUnitOfWorkFactory, *clients: AgentModelClient) -> FakeClientFactory:
    mapping = {uow.add_agent(f"agent {i}").id: client for i, client in enumerate(clients)}
    return FakeClientFactory(mapping)


def test_agents_trade_on_one_snapshot_without_look_ahead() -> None:
    uow = market()
    first, second = ScriptedClient([BUY_ETH]), ScriptedClient()
    report = cycle(uow, agents_with(uow, first, second))

    assert report.decided == 2
    assert report.trades == 1
    assert report.holds == {"model chose to hold": 1}
    (seen_by_first,), (seen_by_second,) = first.contexts, second.contexts
    assert seen_by_first.snapshot is seen_by_second.snapshot  # the same frozen view for everyone
    snapshot = seen_by_first.snapshot
    assert report.snapshot_sha256 == snapshot.sha256
    assert all(c.close_time <= CYCLE for rows in snapshot.candles.values() for c in rows)
    assert len(snapshot.candles["BTC"]) == 24
    assert snapshot.last_prices["BTC"] == Decimal(50_047)

    portfolio = uow.state.portfolios[1]
    assert portfolio.positions["ETH"].quantity > 0
    assert portfolio.cash < RULES.starting_cash
    assert uow.state.portfolios[2].cash == RULES.starting_cash  # created with starting cash, untouched
    record = uow.state.decisions[(1, CYCLE)]
    assert record.snapshot_sha256 == snapshot.sha256
    assert record.data_staleness_seconds == 0
    assert uow.state.cycles[CYCLE].decisions == 2


def test_the_slow_part_runs_concurrently() -> None:
    uow = market()
    clients = agents_with(uow, *(ScriptedClient(sleep_s=0.5) for _ in range(20)))
    started = time.perf_counter()
    report = cycle(uow, clients)
    elapsed = time.perf_counter() - started
    assert report.decided == 20
    assert elapsed < 1.2 * 0.5


def test_concurrency_is_bounded() -> None:
    uow = market()
    running, peak = 0, 0

    class Counting(ScriptedClient):
        async def decide(self, context):  # type: ignore[no-untyped-def]
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return await super().decide(context)

    clients = agents_with(uow, *(Counting() for _ in range(10)))
    asyncio.run(
        run_cycle(
            uow_factory=uow,
            clients=clients,
            cycle_time=CYCLE,
            rules=RULES,
            interval="1h",
            snapshot_candles=24,
            agent_timeout_s=5,
            max_concurrency=3,
        )
    )
    assert peak == 3


def test_raising_hanging_and_invalid_clients_become_holds_while_others_trade() -> None:
    uow = market()
    clients = agents_with(
        uow,
        ScriptedClient(error=ValueError("bad JSON")),
        ScriptedClient(sleep_s=10),
        ScriptedClient(result="not a decision"),
        ScriptedClient([BUY_ETH]),
    )
    report = cycle(uow, clients, timeout_s=0.2)

    assert report.decided == 4
    assert report.trades == 1
    assert report.holds == {
        "error: ValueError: bad JSON": 1,
        "timeout after 0.2s": 1,
        "invalid decision: expected AgentDecision, got str": 1,
    }
    assert uow.state.decisions[(1, CYCLE)].decision.hold_reason == "error: ValueError: bad JSON"
    assert uow.state.decisions[(2, CYCLE)].decision.reasoning == "HOLD: timeout after 0.2s"
    assert uow.state.decisions[(4, CYCLE)].trades


class Instant:
    """A synchronous client (like the baselines): `decide_now` answers, `decide` must not be needed."""

    def __init__(self, answer: object = None, *, error: Exception | None = None) -> None:
        self.answer, self.error, self.calls = answer, error, 0

    async def decide(self, context: AgentContext) -> AgentDecision:
        raise AssertionError("an instant client is called through decide_now")

    def decide_now(self, context: AgentContext) -> AgentDecision:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]  # a test may hand back garbage on purpose


def test_instant_clients_are_called_directly_and_guarded_like_the_others() -> None:
    uow = market()
    trader = Instant(AgentDecision((BUY_ETH,), "buy", 0.7))
    clients = agents_with(
        uow,
        Instant(error=KeyError("BTC")),
        Instant("not a decision"),
        ScriptedClient(sleep_s=0.05, reasoning="remote"),
        trader,
    )
    report = cycle(uow, clients)

    assert trader.calls == 1
    assert report.decided == 4
    assert report.trades == 1
    assert report.holds == {
        "error: KeyError: 'BTC'": 1,
        "invalid decision: expected AgentDecision, got str": 1,
        "model chose to hold": 1,
    }
    assert uow.state.decisions[(3, CYCLE)].decision.reasoning == "remote"
    assert uow.state.decisions[(1, CYCLE)].decision.latency_ms is not None  # a fallback records its latency


def test_a_factory_that_raises_becomes_a_hold() -> None:
    uow = market()
    uow.add_agent("broken")

    def explode(agent: Agent) -> AgentModelClient:
        raise RuntimeError("no client")

    report = cycle(uow, explode)
    assert report.holds == {"error: RuntimeError: no client": 1}


def test_rejected_orders_are_recorded_with_the_decision() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient([Order("DOGE", Side.BUY, quantity=Decimal(1)), BUY_ETH]))
    report = cycle(uow, clients)
    assert report.rejections == 1
    assert report.trades == 1
    (rejection,) = uow.state.decisions[(1, CYCLE)].rejections
    assert rejection.reason is RejectionReason.UNKNOWN_SYMBOL


def test_rerunning_the_same_cycle_changes_nothing() -> None:
    uow = market()
    client = ScriptedClient([BUY_ETH])
    clients = agents_with(uow, client)
    cycle(uow, clients)
    before = uow.state.copy()
    commits = uow.commits

    again = cycle(uow, clients)

    assert again.decided == 0
    assert again.skipped == 1
    assert uow.commits == commits
    assert uow.state.portfolios == before.portfolios
    assert uow.state.cycles == before.cycles
    assert len(client.contexts) == 1  # the model was not even asked again


def test_a_concurrent_run_that_decided_first_is_counted_as_skipped() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient([BUY_ETH]))

    def racing_factory(agent: Agent) -> AgentModelClient:
        # Another worker commits this agent's decision after our run read the decided set.
        with uow() as other:
            other.decisions.add(
                DecisionRecord(agent.id, CYCLE, "other", AgentDecision.hold("other run"), (), (), None, CYCLE)
            )
            other.commit()
        return clients(agent)

    report = cycle(uow, racing_factory)
    assert (report.decided, report.skipped) == (0, 1)
    assert 1 not in uow.state.portfolios  # the losing run's portfolio change was rolled back
    assert uow.state.decisions[(1, CYCLE)].snapshot_sha256 == "other"


def test_a_failing_save_for_one_agent_leaves_the_others_committed() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient([BUY_ETH]), ScriptedClient([BUY_ETH]), ScriptedClient([BUY_ETH]))
    uow.failing_portfolio_saves.add(2)
    report = cycle(uow, clients)

    assert report.failed == (2,)
    assert report.decided == 2
    assert (2, CYCLE) not in uow.state.decisions
    assert 2 not in uow.state.portfolios
    assert uow.state.portfolios[1].positions
    assert uow.state.portfolios[3].positions

    # Once the database recovers, re-running the cycle decides only the agent that failed.
    uow.failing_portfolio_saves.clear()
    retry = cycle(uow, clients)
    assert (retry.decided, retry.skipped) == (1, 2)
    assert uow.state.cycles[CYCLE].decisions == 3


def test_empty_snapshot_records_nothing() -> None:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(Asset("BTC", "Bitcoin", "bitcoin"))
    clients = agents_with(uow, ScriptedClient([BUY_ETH]))
    report = cycle(uow, clients)
    assert report.note == NO_MARKET_DATA
    assert report.snapshot_sha256 is None
    assert uow.commits == 0
    assert clients.calls == []


def test_inactive_agents_do_not_decide() -> None:
    uow = market()
    active = ScriptedClient()
    clients = agents_with(uow, active)
    inactive = uow.add_agent("retired", active=False)
    clients.clients[inactive.id] = ScriptedClient()
    report = cycle(uow, clients)
    assert report.agents == 1
    assert clients.calls == [1]


def test_naive_cycle_time_is_rejected() -> None:
    uow = market()
    with pytest.raises(ValueError, match="naive"):
        asyncio.run(
            run_cycle(
                uow_factory=uow,
                clients=FakeClientFactory(),
                cycle_time=CYCLE.replace(tzinfo=None),
                rules=RULES,
                interval="1h",
                snapshot_candles=24,
                agent_timeout_s=1,
                max_concurrency=1,
            )
        )


def test_report_is_json_friendly() -> None:
    uow = market()
    report = cycle(uow, agents_with(uow, ScriptedClient()))
    payload = report.as_dict()
    assert payload["cycle_time"] == CYCLE.isoformat()
    assert payload["decided"] == 1
    assert isinstance(payload["duration_ms"], float)


def test_a_portfolio_changed_since_the_load_is_read_again_never_overwritten() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient([BUY_ETH]))
    with uow() as setup:
        setup.portfolios.save(Portfolio(1, RULES.starting_cash))
        setup.commit()

    def racing_factory(agent: Agent) -> AgentModelClient:
        # Another writer changes the portfolio after our run loaded it (say, an admin top-up).
        with uow() as other:
            portfolio = other.portfolios.get(agent.id)
            assert portfolio is not None
            portfolio.cash += Decimal(500)
            other.portfolios.save(portfolio)
            other.commit()
        return clients(agent)

    report = cycle(uow, racing_factory)
    assert (report.decided, report.trades) == (1, 1)
    # The buy was executed on the stored portfolio, top-up included: nothing the other writer did is lost.
    trade = uow.state.decisions[(1, CYCLE)].trades[0]
    assert uow.state.portfolios[1].cash == RULES.starting_cash + 500 - trade.notional - trade.fee


def test_a_hold_writes_no_portfolio() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient())
    with uow() as setup:
        setup.portfolios.save(Portfolio(1, RULES.starting_cash))
        setup.commit()
    versions = dict(uow.state.portfolio_versions)
    report = cycle(uow, clients)
    assert report.holds == {"model chose to hold": 1}
    assert uow.state.portfolio_versions == versions
    assert (1, CYCLE) in uow.state.decisions


class FlakyDecisionWrites(FakeUnitOfWorkFactory):
    """The database fails the first `failures` decision writes (an outage), then recovers."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self):  # type: ignore[no-untyped-def]
        unit = super().__call__()
        add = unit.decisions.add

        def flaky_add(record: DecisionRecord) -> None:
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("simulated database outage")
            add(record)

        unit.decisions.add = flaky_add  # type: ignore[method-assign]
        return unit


def flaky_market(failures: int) -> FlakyDecisionWrites:
    uow = FlakyDecisionWrites(failures)
    source = market()
    uow.state = source.state
    return uow


def test_a_failed_write_is_retried_with_the_answer_already_received() -> None:
    uow = flaky_market(failures=2)
    client = ScriptedClient([BUY_ETH], reasoning="paid for once")
    report = cycle(uow, agents_with(uow, client), retry_delays=(0, 0))

    assert (report.decided, report.failed) == (1, ())
    assert len(client.contexts) == 1  # asked once
    assert uow.state.decisions[(1, CYCLE)].decision.reasoning == "paid for once"
    assert uow.state.portfolios[1].positions["ETH"].quantity > 0


def test_a_write_that_keeps_failing_records_a_hold_that_keeps_the_answer() -> None:
    uow = flaky_market(failures=3)  # the decision and both retries fail; the HOLD gets through
    client = ScriptedClient([BUY_ETH])
    client_decision = AgentDecision(orders=(BUY_ETH,), reasoning="r", raw_response='{"orders": [...]}')
    client.result = client_decision
    report = cycle(uow, agents_with(uow, client), retry_delays=(0, 0))

    assert (report.decided, report.failed) == (1, ())
    record = uow.state.decisions[(1, CYCLE)]
    assert record.decision.orders == ()
    assert record.decision.hold_reason is not None
    assert record.decision.hold_reason.startswith("error: could not record the decision: ConnectionError")
    assert record.decision.raw_response == '{"orders": [...]}'  # the answer's audit trail is kept
    assert uow.state.portfolios[1].cash == RULES.starting_cash


def test_answers_survive_a_failed_run_of_the_job_and_are_not_asked_again() -> None:
    uow = flaky_market(failures=100)
    client = ScriptedClient([BUY_ETH], reasoning="answered in the first run")
    clients = agents_with(uow, client)
    answers: dict[int, AgentDecision] = {}
    assert cycle(uow, clients, answers=answers).failed == (1,)

    uow.failures = 0  # the database is back: the job runs again with the answers it kept
    report = cycle(uow, clients, answers=answers)

    assert (report.decided, report.failed) == (1, ())
    assert len(client.contexts) == 1
    assert uow.state.decisions[(1, CYCLE)].decision.reasoning == "answered in the first run"


def test_a_run_killed_before_the_cycle_row_gets_it_written_by_the_re_run() -> None:
    uow = market()
    clients = agents_with(uow, ScriptedClient([BUY_ETH]))
    cycle(uow, clients)
    del uow.state.cycles[CYCLE]  # as if the worker died between the last decision and the summary row

    report = cycle(uow, clients)

    assert (report.decided, report.skipped) == (0, 1)
    assert uow.state.cycles[CYCLE].decisions == 1
    recorded = uow.state.cycles[CYCLE]
    cycle(uow, clients)
    assert uow.state.cycles[CYCLE] == recorded  # once written, a re-run leaves it as it is
