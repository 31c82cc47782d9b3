"""Repositories and the unit of work against real databases: exact round trips and uniqueness rules."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.models import CycleRow, DecisionRow, PortfolioRow, TradeRow
from shared.adapters.db.repositories import (
    _INSERT_DECISIONS_RETURNING_IDS,
    _MARKING_INPUTS,
    _RECORD_COUNTED_INSERT,
    _RECORD_COUNTED_UPDATE,
    _REPLACE_PORTFOLIO,
    SqlAlchemyCycleRepository,
    SqlAlchemyDecisionRepository,
    SqlAlchemyEquityRepository,
)
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import AgentDecision, Asset, EquitySnapshot, Portfolio, Position
from shared.services.ports import CycleRecord, DuplicateDecisionError
from tests.integration.db.builders import HOUR, T0, agent, decision_record


def add_agent(uow_factory: SqlAlchemyUnitOfWorkFactory, name: str = "momentum") -> int:
    with uow_factory() as uow:
        stored = uow.agents.add(agent(name))
        uow.commit()
    return stored.id


def count(uow_factory: SqlAlchemyUnitOfWorkFactory, model: type) -> int:
    with uow_factory() as uow:
        return uow.connection.execute(select(func.count()).select_from(model)).scalar_one()


def test_assets_upsert_and_list(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.assets.upsert(Asset("ETH", "Ethereum", "ethereum"))
        uow.assets.upsert(Asset("BTC", "Bitcoin", "bitcoin"))
        uow.assets.upsert(Asset("BTC", "Bitcoin (renamed)", "bitcoin", active=False))
        uow.commit()
    with uow_factory() as uow:
        assert uow.assets.list() == [Asset("ETH", "Ethereum", "ethereum")]
        assert [a.name for a in uow.assets.list(active_only=False)] == ["Bitcoin (renamed)", "Ethereum"]


def test_agents_add_get_and_deactivate(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    first, second = add_agent(uow_factory, "momentum"), add_agent(uow_factory, "llama-3 ✓")
    assert first != second
    with uow_factory() as uow:
        uow.agents.set_active(first, active=False, reason="no API key")
        uow.commit()
    with uow_factory() as uow:
        stored = uow.agents.get(first)
        assert stored is not None
        assert (stored.active, stored.inactive_reason, stored.params) == (False, "no API key", {"lookback": 24})
        assert uow.agents.get_by_name("llama-3 ✓") == uow.agents.get(second)
        assert [a.id for a in uow.agents.list(active_only=True)] == [second]
        assert [a.id for a in uow.agents.list()] == [first, second]
        assert uow.agents.get(999) is None
        assert uow.agents.get_by_name("nobody") is None


def test_portfolio_round_trip_is_exact(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    agent_id = add_agent(uow_factory)
    portfolio = Portfolio(
        agent_id,
        cash=Decimal("97899.97497500"),
        positions={
            "BTC": Position(Decimal("0.05000000"), Decimal("42000.50000001")),
            "ETH": Position(Decimal("1.23456789"), Decimal("0.00000001")),
        },
        fees_paid=Decimal("2.100025"),
        trade_count=2,
    )
    with uow_factory() as uow:
        assert uow.portfolios.get(agent_id) is None
        uow.portfolios.save(portfolio)
        uow.commit()
    with uow_factory() as uow:
        assert uow.portfolios.get(agent_id) == portfolio
    sold = Portfolio(agent_id, Decimal("99999.5"), {"ETH": Position(Decimal(1), Decimal(2))}, Decimal(3), 3)
    with uow_factory() as uow:
        uow.portfolios.save(sold)  # replaces the whole set: BTC is gone
        uow.commit()
    with uow_factory() as uow:
        assert uow.portfolios.get(agent_id) == sold


def test_decision_with_trades_is_stored(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    agent_id = add_agent(uow_factory)
    with uow_factory() as uow:
        uow.decisions.add(decision_record(agent_id, T0, trades=2))
        uow.decisions.add(decision_record(agent_id, T0 + HOUR, hold="timeout"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.decisions.decided_agent_ids(T0) == {agent_id}
        assert uow.decisions.decided_agent_ids(T0 + 2 * HOUR) == set()
        statuses = uow.connection.execute(select(DecisionRow.status).order_by(DecisionRow.cycle_time)).scalars().all()
        assert statuses == ["ok", "hold_fallback"]
    assert count(uow_factory, TradeRow) == 2


def test_duplicate_decision_raises_and_changes_nothing(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    agent_id = add_agent(uow_factory)
    with uow_factory() as uow:
        uow.decisions.add(decision_record(agent_id, T0))
        uow.commit()

    with uow_factory() as uow:
        with pytest.raises(DuplicateDecisionError):
            uow.decisions.add(decision_record(agent_id, T0, trades=3))
        with pytest.raises(DuplicateDecisionError):  # a hold (no trades) takes the other statement
            uow.decisions.add(decision_record(agent_id, T0, hold="timeout"))
        uow.decisions.add(decision_record(agent_id, T0 + HOUR, hold="timeout"))  # a new cycle: stored
        uow.commit()

    assert count(uow_factory, DecisionRow) == 2
    assert count(uow_factory, TradeRow) == 1
    with uow_factory() as uow:
        assert uow.decisions.decided_agent_ids(T0 + HOUR) == {agent_id}


@pytest.mark.parametrize("on_conflict", [True, False], ids=["on_conflict", "check_then_insert"])
def test_unique_constraint_backs_the_duplicate_check(
    uow_factory: SqlAlchemyUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch, on_conflict: bool
) -> None:
    """A concurrent writer can commit between the check and the insert: the constraint still holds, and the
    unit of work stays usable (the failed insert is undone by its savepoint, or never fails: ON CONFLICT)."""
    agent_id = add_agent(uow_factory)
    with uow_factory() as uow:
        uow.decisions.add(decision_record(agent_id, T0))
        uow.commit()

    with uow_factory() as uow:
        decisions = SqlAlchemyDecisionRepository(uow.connection, on_conflict=on_conflict)
        original_execute = uow.connection.execute

        def execute_skipping_the_check(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
            if "EXISTS" in str(statement):
                return original_execute(select(False))
            return original_execute(statement, *args, **kwargs)

        monkeypatch.setattr(uow.connection, "execute", execute_skipping_the_check)
        with pytest.raises(DuplicateDecisionError):
            decisions.add(decision_record(agent_id, T0))
        monkeypatch.undo()
        decisions.add(decision_record(agent_id, T0 + HOUR))
        uow.commit()

    assert count(uow_factory, DecisionRow) == 2


def llm_usage(uow_factory: SqlAlchemyUnitOfWorkFactory, agent_id: int) -> tuple[int, int, Decimal]:
    columns = (PortfolioRow.prompt_tokens, PortfolioRow.completion_tokens, PortfolioRow.llm_cost_usd)
    with uow_factory() as uow:
        row = uow.connection.execute(select(*columns).where(PortfolioRow.agent_id == agent_id)).one()
    return row[0], row[1], row[2]


@pytest.mark.parametrize("on_conflict", [True, False], ids=["native", "portable"])
def test_decisions_add_their_llm_usage_to_the_agents_running_totals(
    uow_factory: SqlAlchemyUnitOfWorkFactory, on_conflict: bool
) -> None:
    agent_id = add_agent(uow_factory)
    invalid_output = AgentDecision.hold(
        "invalid output: no decision object", prompt_tokens=1000, completion_tokens=20, cost_usd=Decimal("0.0001")
    )
    llm_hold = dataclasses.replace(decision_record(agent_id, T0 + HOUR, hold="x"), decision=invalid_output)
    with uow_factory() as uow:
        uow.portfolios.save(Portfolio(agent_id, Decimal(1000)))
        uow.commit()
    assert llm_usage(uow_factory, agent_id) == (0, 0, Decimal(0))

    with uow_factory() as uow:
        stored = uow.portfolios.get_many_versioned([agent_id])[agent_id]
        decisions = SqlAlchemyDecisionRepository(uow.connection, on_conflict=on_conflict)
        decisions.add(decision_record(agent_id, T0))  # 900 + 80 tokens, $0.00012345, with trades
        decisions.add(llm_hold)  # a hold writes only the decision: its usage counts all the same
        decisions.add(decision_record(agent_id, T0 + 2 * HOUR, hold="timeout"))  # no usage reported
        with pytest.raises(DuplicateDecisionError):
            decisions.add(decision_record(agent_id, T0))  # nothing written, nothing added
        # Usage does not bump the portfolio's version: the cycle's optimistic replace still succeeds.
        assert uow.portfolios.replace(stored, Portfolio(agent_id, Decimal(999)))
        uow.commit()
    assert llm_usage(uow_factory, agent_id) == (1900, 100, Decimal("0.00022345"))

    with uow_factory() as uow:
        uow.decisions.add(decision_record(agent_id, T0 + 3 * HOUR))
    # Left without a commit: the usage is rolled back with its decision.
    assert llm_usage(uow_factory, agent_id) == (1900, 100, Decimal("0.00022345"))


def test_equity_add_is_unique_per_agent_and_time(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    agent_id = add_agent(uow_factory)
    first = EquitySnapshot.first(agent_id, at=T0, equity=Decimal(100_000), cash=Decimal(100_000))
    second = first.next(at=T0 + HOUR, equity=Decimal("95000.12345678"), cash=Decimal(50_000))
    with uow_factory() as uow:
        assert uow.equity.latest(agent_id) is None
        assert uow.equity.add(first) is True
        assert uow.equity.add(second) is True
        assert uow.equity.add(first) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.equity.latest(agent_id) == second
        assert uow.equity.latest(agent_id + 1) is None
        assert (first.ordinal, second.ordinal) == (1, 2)


def test_equity_ordinal_is_unique_per_agent(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    """Two writers that both read snapshot n and write n + 1 at different times: the second one's mark is
    skipped (the first one's stands) instead of leaving two snapshots with one number (a thinned curve would
    skip or repeat a point) or failing the whole job."""
    agent_id, other_id = add_agent(uow_factory, "a"), add_agent(uow_factory, "b")
    first = EquitySnapshot.first(agent_id, at=T0, equity=Decimal(100), cash=Decimal(100))
    with uow_factory() as uow:
        uow.equity.add_many([first, first.next(at=T0 + HOUR, equity=Decimal(101), cash=Decimal(100))])
        uow.equity.add(EquitySnapshot.first(other_id, at=T0, equity=Decimal(100), cash=Decimal(100)))  # own numbers
        uow.commit()
    stale = first.next(at=T0 + 2 * HOUR, equity=Decimal(102), cash=Decimal(100))  # number 2 again
    with uow_factory() as uow:
        assert uow.equity.add_many([stale]) == 0
        assert uow.equity.add(stale) is False
        uow.commit()
    with uow_factory() as uow:
        latest = uow.equity.latest(agent_id)
        assert latest is not None
        assert (latest.at, latest.ordinal) == (T0 + HOUR, 2)


def test_cycle_record_is_updated_on_rerun(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    record = CycleRecord(T0, "cd" * 32, 5, 5, 3, T0, T0 + timedelta(seconds=4))
    with uow_factory() as uow:
        assert uow.cycles.latest_time() is None
        uow.cycles.add(record)
        uow.cycles.add(CycleRecord(T0 - HOUR, "ef" * 32, 5, 5, 0, T0 - HOUR, T0 - HOUR))
        uow.commit()
    with uow_factory() as uow:
        uow.cycles.add(CycleRecord(T0, "cd" * 32, 5, 0, 0, T0, T0 + timedelta(seconds=9)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.cycles.latest_time() == T0


def test_leaving_without_commit_rolls_back(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.agents.add(agent("ghost"))

    def fail_midway() -> None:
        with uow_factory() as uow:
            uow.agents.add(agent("ghost"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    with uow_factory() as uow:
        assert uow.agents.list() == []


def test_explicit_rollback_then_more_work(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        uow.agents.add(agent("discarded"))
        uow.rollback()
        uow.agents.add(agent("kept"))
        uow.commit()
    with uow_factory() as uow:
        assert [a.name for a in uow.agents.list()] == ["kept"]


def test_unit_of_work_is_not_usable_outside_its_block(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    uow = uow_factory()
    with pytest.raises(RuntimeError, match="outside"):
        uow.commit()


def test_agent_params_keep_decimals_exact(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        stored = uow.agents.add(dataclasses.replace(agent(), params={"threshold": Decimal("0.015"), "n": 3}))
        uow.commit()
    with uow_factory() as uow:
        again = uow.agents.get(stored.id)
    assert again is not None
    assert again.params == {"threshold": "0.015", "n": 3}


def test_portfolio_replace_writes_only_over_the_version_it_read(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    agent_id = add_agent(uow_factory)
    start = Portfolio(
        agent_id, Decimal(1000), {"BTC": Position(Decimal(1), Decimal(10)), "ETH": Position(Decimal(2), Decimal(5))}
    )
    with uow_factory() as uow:
        uow.portfolios.save(start)
        uow.commit()
    with uow_factory() as uow:
        stored = uow.portfolios.get_many_versioned([agent_id])[agent_id]
    assert stored.portfolio == start

    # Every kind of position change at once: one removed, one changed, one added.
    after = Portfolio(
        agent_id,
        Decimal("900.5"),
        {"ETH": Position(Decimal(3), Decimal(6)), "SOL": Position(Decimal("0.5"), Decimal(20))},
        Decimal("0.1"),
        2,
    )
    with uow_factory() as uow:
        assert uow.portfolios.replace(stored, after) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.portfolios.get(agent_id) == after
        newer = uow.portfolios.get_many_versioned([agent_id])[agent_id]
    assert newer.version > stored.version

    # A writer still holding the old version loses, writes nothing, and its transaction stays usable.
    with uow_factory() as uow:
        assert uow.portfolios.replace(stored, start) is False
        assert uow.portfolios.get(agent_id) == after
        uow.portfolios.save(start)  # the fallback: write over what is stored now
        uow.commit()
    with uow_factory() as uow:
        assert uow.portfolios.get(agent_id) == start
        assert uow.portfolios.get_many_versioned([agent_id])[agent_id].version > newer.version


@pytest.mark.parametrize("on_conflict", [True, False], ids=["native", "portable"])
def test_equity_add_many_and_marking_inputs(uow_factory: SqlAlchemyUnitOfWorkFactory, on_conflict: bool) -> None:
    holder, idle = add_agent(uow_factory, "holder"), add_agent(uow_factory, "idle")
    add_agent(uow_factory, "no portfolio")
    holding = Portfolio(holder, Decimal(10), {"BTC": Position(Decimal(2), Decimal(7))})
    first = EquitySnapshot.first(holder, at=T0, equity=Decimal(24), cash=Decimal(10))
    with uow_factory() as uow:
        uow.portfolios.save(holding)
        uow.portfolios.save(Portfolio(idle, Decimal(100)))
        assert uow.equity.marking_inputs() == [(holding, None), (Portfolio(idle, Decimal(100)), None)]
        uow.equity.add(first)
        uow.commit()

    second = first.next(at=T0 + HOUR, equity=Decimal(20), cash=Decimal(10))
    idle_first = EquitySnapshot.first(idle, at=T0 + HOUR, equity=Decimal(100), cash=Decimal(100))
    with uow_factory() as uow:
        repository = SqlAlchemyEquityRepository(uow.connection, on_conflict=on_conflict)
        assert repository.marking_inputs() == [(holding, first), (Portfolio(idle, Decimal(100)), None)]
        assert repository.add_many([second, idle_first]) == 2
        assert repository.add_many([second, idle_first]) == 0  # already stored: nothing written, no error
        assert repository.add_many([]) == 0
        uow.commit()
    with uow_factory() as uow:
        assert [latest for _, latest in uow.equity.marking_inputs()] == [second, idle_first]


@pytest.mark.parametrize("on_conflict", [True, False], ids=["native", "portable"])
def test_cycle_record_counts_the_stored_decisions(uow_factory: SqlAlchemyUnitOfWorkFactory, on_conflict: bool) -> None:
    first, second = add_agent(uow_factory, "first"), add_agent(uow_factory, "second")
    with uow_factory() as uow:
        uow.decisions.add(decision_record(first, T0, trades=2))
        uow.decisions.add(decision_record(first, T0 - HOUR, trades=1))  # another cycle: not counted
        uow.commit()

    def record(finished: timedelta) -> CycleRecord:
        with uow_factory() as uow:
            cycles = SqlAlchemyCycleRepository(uow.connection, on_conflict=on_conflict)
            cycles.record_counted(
                cycle_time=T0, snapshot_sha256="cd" * 32, agents=2, started_at=T0, finished_at=T0 + finished
            )
            uow.commit()
            row = uow.connection.execute(select(CycleRow).where(CycleRow.cycle_time == T0)).one()
        return CycleRecord(
            row.cycle_time, row.snapshot_sha256, row.agents, row.decisions, row.trades, row.started_at, row.finished_at
        )

    assert record(timedelta(seconds=1)) == CycleRecord(T0, "cd" * 32, 2, 1, 2, T0, T0 + timedelta(seconds=1))
    with uow_factory() as uow:  # a later partial run decides the other agent: the record counts both
        uow.decisions.add(decision_record(second, T0, hold="timeout"))
        uow.commit()
    assert record(timedelta(seconds=5)) == CycleRecord(T0, "cd" * 32, 2, 2, 2, T0, T0 + timedelta(seconds=5))
    assert count(uow_factory, CycleRow) == 1


def test_portable_branch_statements_compile_for_mssql() -> None:
    dialect = mssql_pyodbc.dialect(paramstyle="qmark")
    update_sql = str(_RECORD_COUNTED_UPDATE.compile(dialect=dialect))
    assert update_sql.startswith("UPDATE cycles SET snapshot_sha256=?, agents=?, decisions=(SELECT count(*)")
    assert update_sql.endswith("WHERE cycles.cycle_time = ?")
    insert_sql = str(_RECORD_COUNTED_INSERT.compile(dialect=dialect))
    assert insert_sql.startswith("INSERT INTO cycles (cycle_time, snapshot_sha256, agents, decisions, trades")
    assert "FROM decisions \nWHERE decisions.cycle_time = ?" in insert_sql
    replace_sql = str(_REPLACE_PORTFOLIO.compile(dialect=dialect))
    assert "version=(portfolios.version + ?)" in replace_sql
    assert replace_sql.endswith("WHERE portfolios.agent_id = ? AND portfolios.version = ?")
    # A backtest's decisions with trades get their ids back from one bulk insert (OUTPUT on Azure SQL).
    bulk_sql = str(_INSERT_DECISIONS_RETURNING_IDS.compile(dialect=dialect, column_keys=["agent_id", "cycle_time"]))
    assert bulk_sql == "INSERT INTO decisions (agent_id, cycle_time) OUTPUT inserted.id VALUES (?, ?)"
    marking_sql = str(_MARKING_INPUTS.compile(dialect=dialect))
    assert "LEFT OUTER JOIN equity_snapshots ON equity_snapshots.agent_id = portfolios.agent_id" in marking_sql


def test_decisions_add_many_links_each_trade_to_its_own_decision(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    first, second = add_agent(uow_factory, "first"), add_agent(uow_factory, "second")
    with uow_factory() as uow:
        for agent_id in (first, second):
            uow.portfolios.save(Portfolio(agent_id, Decimal(1000)))
        uow.commit()
    records = [
        decision_record(first, T0, trades=2),
        decision_record(second, T0, hold="timeout"),
        decision_record(first, T0 + HOUR, hold="timeout"),
        decision_record(second, T0 + HOUR, trades=1),
    ]
    with uow_factory() as uow:
        uow.decisions.add_many(records)
        uow.commit()

    with uow_factory() as uow:
        assert uow.decisions.latest_cycle_time() == T0 + HOUR
        linked = uow.connection.execute(
            select(TradeRow.agent_id, TradeRow.cycle_time, DecisionRow.agent_id, DecisionRow.cycle_time)
            .join(DecisionRow, DecisionRow.id == TradeRow.decision_id)
            .order_by(TradeRow.id)
        ).all()
        counts = dict(
            uow.connection.execute(
                select(DecisionRow.agent_id, func.sum(DecisionRow.trade_count)).group_by(DecisionRow.agent_id)
            ).all()
        )
    assert [(row[0], row[1]) for row in linked] == [(first, T0), (first, T0), (second, T0 + HOUR)]
    assert all(row[0] == row[2] and row[1] == row[3] for row in linked)  # each trade points at its decision
    assert counts == {first: 2, second: 1}
    assert count(uow_factory, DecisionRow) == 4
    # The two decisions that report usage (900 + 80 tokens each) add to their agents' totals.
    assert llm_usage(uow_factory, first) == (900, 80, Decimal("0.00012345"))
    assert llm_usage(uow_factory, second) == (900, 80, Decimal("0.00012345"))


@pytest.mark.parametrize("duplicate_has_trades", [True, False], ids=["with_trades", "hold"])
def test_decisions_add_many_refuses_a_stored_decision(
    uow_factory: SqlAlchemyUnitOfWorkFactory, duplicate_has_trades: bool
) -> None:
    agent_id = add_agent(uow_factory)
    with uow_factory() as uow:
        uow.portfolios.save(Portfolio(agent_id, Decimal(1000)))
        uow.decisions.add(decision_record(agent_id, T0 + HOUR))
        uow.commit()
    duplicate = (
        decision_record(agent_id, T0 + HOUR, trades=1)
        if duplicate_has_trades
        else decision_record(agent_id, T0 + HOUR, hold="timeout")
    )
    with uow_factory() as uow, pytest.raises(DuplicateDecisionError, match="already exist"):
        uow.decisions.add_many([decision_record(agent_id, T0, hold="timeout"), duplicate])
    assert count(uow_factory, DecisionRow) == 1  # the unit of work was left without a commit: nothing new
    assert count(uow_factory, TradeRow) == 1
    with uow_factory() as uow:
        assert uow.decisions.latest_cycle_time() == T0 + HOUR


def test_cycles_add_many_records_new_cycles_and_refuses_recorded_ones(
    uow_factory: SqlAlchemyUnitOfWorkFactory,
) -> None:
    records = [CycleRecord(T0 + i * HOUR, "ab" * 32, 5, 5, i, T0, T0 + timedelta(seconds=1)) for i in range(3)]
    with uow_factory() as uow:
        assert uow.cycles.latest_time() is None
        assert uow.decisions.latest_cycle_time() is None
        uow.cycles.add_many(records)
        uow.commit()
    with uow_factory() as uow:
        assert uow.cycles.latest_time() == T0 + 2 * HOUR
        with pytest.raises(IntegrityError):
            uow.cycles.add_many([records[1]])
    assert count(uow_factory, CycleRow) == 3
