"""The statistics' persistence on real databases (SQLite and PostgreSQL): what the computation reads, and the
stored set the API serves."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.statistics_store import SqlAlchemyStatisticsRepository
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import EquitySnapshot, Order, Portfolio, Rejection, RejectionReason, Side
from shared.domain.statistics import AgentInputs, AgentStatistics
from shared.services.race_statistics import refresh_race_statistics
from tests.fakes import FakeClock
from tests.integration.db.builders import HOUR, T0, agent, decision_record
from tests.statistics_fakes import sample_statistics

START = Decimal(100_000)


@pytest.fixture
def repository(engine: Engine) -> SqlAlchemyStatisticsRepository:
    return SqlAlchemyStatisticsRepository(engine)


@pytest.fixture
def race(uow_factory: SqlAlchemyUnitOfWorkFactory) -> tuple[int, int, int]:
    """A trader with marks, trades and decisions (one an invalid-output HOLD), a control with marks only, and
    an agent added but never marked."""
    with uow_factory() as uow:
        trader, control, new = (uow.agents.add(agent(name)).id for name in ("trader", "always_hold", "new"))
        for agent_id in (trader, control, new):
            uow.portfolios.save(Portfolio(agent_id, START))
        for agent_id, equities in ((trader, [100_000, 101_000, 99_500, 102_000]), (control, [100_000] * 4)):
            snapshot = EquitySnapshot.first(agent_id, at=T0, equity=START, cash=START)
            uow.equity.add(snapshot)
            for hour, equity in enumerate(equities[1:], start=1):
                snapshot = snapshot.next(at=T0 + hour * HOUR, equity=Decimal(equity), cash=Decimal(50_000))
                uow.equity.add(snapshot)
        uow.decisions.add(decision_record(trader, T0, trades=2))
        uow.decisions.add(decision_record(trader, T0 + HOUR, hold="invalid output: no 'orders' field"))
        uow.decisions.add(decision_record(trader, T0 + 2 * HOUR, hold="timeout"))
        uow.decisions.add(decision_record(trader, T0 + 3 * HOUR, trades=0))
        uow.commit()
    return trader, control, new


def test_the_history_holds_every_agents_marks_fills_and_decision_facts(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int]
) -> None:
    trader, control, new = race

    history = repository.race_history()

    assert [a.id for a in history.agents] == [trader, control, new]
    by_id = {i.agent_id: i for i in history.inputs}
    assert [m.equity for m in by_id[trader].marks] == [START, 101_000, 99_500, 102_000]
    assert by_id[trader].marks[1].cash == 50_000
    assert [m.at for m in by_id[control].marks] == [T0 + h * HOUR for h in range(4)]
    assert (by_id[new].marks, by_id[new].fills, by_id[new].decisions) == ((), (), ())
    assert history.latest_mark == T0 + 3 * HOUR == repository.latest_mark_time()

    fills = by_id[trader].fills
    assert len(fills) == 2
    assert all((f.at, f.symbol, f.side) == (T0, "BTC", Side.BUY) for f in fills)  # the decision's cycle time
    assert (fills[0].quantity, fills[0].price, fills[0].fee) == (
        Decimal("0.05"),
        Decimal("42000.5"),
        Decimal("2.100025"),
    )

    first, invalid, timeout, idle = by_id[trader].decisions
    assert (first.at, first.orders, first.rejection_reasons, first.traded) == (T0, 2, ("unknown_symbol",), True)
    assert (first.parse_failed, first.hold_code, first.confidence) == (False, None, 0.62)
    assert (first.latency_ms, first.cost_usd) == (123.5, Decimal("0.00012345"))
    assert (invalid.parse_failed, invalid.hold_code, invalid.orders, invalid.traded) == (
        True,
        "invalid_output",
        0,
        False,
    )
    assert (timeout.parse_failed, timeout.hold_code) == (False, "timeout")
    assert (idle.traded, idle.hold_code) == (False, None)


def test_no_marks_no_latest_mark(repository: SqlAlchemyStatisticsRepository) -> None:
    assert repository.latest_mark_time() is None
    assert repository.race_history().latest_mark is None
    assert repository.stamp() is None
    assert repository.latest() is None


def test_a_saved_set_is_read_back_whole_and_replaced_whole(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int]
) -> None:
    trader, control, _ = race
    first = {trader: sample_statistics(trader, controls={control: "always_hold"}), control: sample_statistics(control)}

    assert repository.save(computed_for=T0 + 3 * HOUR, computed_at=T0 + 4 * HOUR, statistics=first)

    stored = repository.latest()
    assert stored is not None
    assert (stored.computed_for, stored.computed_at) == (T0 + 3 * HOUR, T0 + 4 * HOUR)
    assert dict(stored.by_agent) == first
    assert repository.latest() is stored  # unchanged stamp: served from memory, not decoded again
    stamp = repository.stamp()
    assert stamp is not None
    assert (stamp.computed_for, stamp.agents) == (T0 + 3 * HOUR, 2)

    newer = {trader: sample_statistics(trader, sharpe=-0.5)}
    assert repository.save(computed_for=T0 + 4 * HOUR, computed_at=T0 + 5 * HOUR, statistics=newer)
    replaced = repository.latest()
    assert replaced is not None
    assert replaced is not stored
    assert dict(replaced.by_agent) == newer  # the control's old row went with the old set
    assert repository.stamp() != stamp


def test_an_older_set_never_overwrites_a_newer_one(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int]
) -> None:
    trader, _, _ = race
    assert repository.save(computed_for=T0 + 3 * HOUR, computed_at=T0, statistics={trader: sample_statistics(trader)})

    stale = {trader: sample_statistics(trader, sharpe=9.9)}
    assert not repository.save(computed_for=T0 + 2 * HOUR, computed_at=T0 + HOUR, statistics=stale)

    stored = repository.latest()
    assert stored is not None
    assert stored.by_agent[trader].sharpe == sample_statistics(trader).sharpe


def test_a_cycle_committing_while_a_set_is_saved_never_fails_either(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int], engine: Engine
) -> None:
    """The local race saves statistics from a worker beside its cycle loop. A cycle that commits between the
    save's read and its write used to fail the save at once with "database is locked" on SQLite (a snapshot
    that cannot become a write, whatever the busy timeout)."""
    trader, _, _ = race
    cycle_errors: list[BaseException] = []

    def a_cycle_commits() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(text("UPDATE agents SET name = name WHERE id = :id"), {"id": trader})
        except BaseException as exc:  # reported by the test
            cycle_errors.append(exc)

    cycle = threading.Thread(target=a_cycle_commits)
    reads = 0

    def on_the_saves_read(*_: Any) -> None:
        nonlocal reads
        reads += 1
        if reads == 1:  # the save's first statement: let the cycle try to commit now
            cycle.start()
            cycle.join(0.5)  # waits for the save's lock (as it should) or commits at once (the old way)

    event.listen(engine, "after_cursor_execute", on_the_saves_read)
    try:
        saved = repository.save(
            computed_for=T0 + 3 * HOUR, computed_at=T0, statistics={trader: sample_statistics(trader)}
        )
    finally:
        event.remove(engine, "after_cursor_execute", on_the_saves_read)
    cycle.join(10)

    assert saved
    assert cycle_errors == []
    stored = repository.latest()
    assert stored is not None
    assert list(stored.by_agent) == [trader]


def test_a_payload_is_strict_json_on_every_dialect(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int], engine: Engine
) -> None:
    trader, _, _ = race
    figures = sample_statistics(trader, turnover=float("inf"), calmar=float("nan"))
    assert repository.save(computed_for=T0, computed_at=T0, statistics={trader: figures})

    with engine.connect() as connection:
        raw = connection.execute(text("SELECT payload FROM agent_statistics")).scalar_one()
    assert "Infinity" in str(raw)
    assert "NaN" in str(raw)
    stored = repository.latest()
    assert stored is not None
    assert stored.by_agent[trader].turnover == float("inf")


def test_the_refresh_reads_the_database_once_per_new_mark_and_stores_the_set(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int], uow_factory: SqlAlchemyUnitOfWorkFactory
) -> None:
    trader, control, new = race
    seen: list[list[int]] = []

    def compute(agents: Sequence[AgentInputs], **kwargs: Any) -> dict[int, AgentStatistics]:
        seen.append([a.agent_id for a in agents])
        return {a.agent_id: sample_statistics(a.agent_id, observations=len(a.marks)) for a in agents}

    def refresh() -> Any:
        return refresh_race_statistics(
            repository=repository, starting_cash=START, cycle_minutes=60, clock=FakeClock(T0), compute=compute
        )

    assert refresh().computed == 2
    assert refresh().skipped == "already computed for the latest mark"
    with uow_factory() as uow:  # the next cycle's marks land
        for agent_id in (trader, control, new):
            latest = uow.equity.latest(agent_id)
            mark = (
                latest.next(at=T0 + 4 * HOUR, equity=START, cash=START)
                if latest
                else EquitySnapshot.first(agent_id, at=T0 + 4 * HOUR, equity=START, cash=START)
            )
            uow.equity.add(mark)
        uow.commit()
    report = refresh()

    assert seen == [[trader, control], [trader, control, new]]  # the new agent counts once it is marked
    assert report.computed_for == T0 + 4 * HOUR
    stored = repository.latest()
    assert stored is not None
    assert {a: s.observations for a, s in stored.by_agent.items()} == {trader: 5, control: 5, new: 1}


def test_statistics_for_an_unknown_agent_are_refused_and_nothing_is_half_written(
    repository: SqlAlchemyStatisticsRepository, race: tuple[int, int, int]
) -> None:
    trader, _, _ = race
    assert repository.save(computed_for=T0, computed_at=T0, statistics={trader: sample_statistics(trader)})

    with pytest.raises(IntegrityError):
        repository.save(
            computed_for=T0 + HOUR,
            computed_at=T0 + HOUR,
            statistics={trader: sample_statistics(trader, sharpe=3.0), 999: sample_statistics(999)},
        )

    stored = repository.latest()
    assert stored is not None
    assert list(stored.by_agent) == [trader]
    assert stored.by_agent[trader].sharpe == sample_statistics(trader).sharpe


def test_orders_the_parser_refused_count_as_asked_for(
    repository: SqlAlchemyStatisticsRepository, uow_factory: SqlAlchemyUnitOfWorkFactory
) -> None:
    # The model asked for three orders: one unreadable (the parser's rejection, never an order), one refused by
    # the rules (stored with the decision's orders), one executed.
    buy = Order("BTC", Side.BUY, quantity=Decimal("0.05"))
    too_small = Order("ETH", Side.BUY, notional_usd=Decimal(1))
    unreadable = Rejection(None, RejectionReason.INVALID_SIZE, "quantity 'lots'")
    refused = Rejection(too_small, RejectionReason.BELOW_MIN_NOTIONAL, "1 < 10")
    with uow_factory() as uow:
        agent_id = uow.agents.add(agent("parser")).id
        uow.portfolios.save(Portfolio(agent_id, START))
        record = decision_record(agent_id, T0)
        decision = replace(record.decision, orders=(buy, too_small), rejections=(unreadable,))
        uow.decisions.add(replace(record, decision=decision, rejections=(unreadable, refused)))
        uow.commit()

    [facts] = next(i for i in repository.race_history().inputs if i.agent_id == agent_id).decisions

    assert facts.orders == 3
    assert facts.rejection_reasons == ("invalid_size", "below_min_notional")
    assert facts.traded
