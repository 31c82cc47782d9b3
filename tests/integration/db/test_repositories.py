"""Repositories and the unit of work against real databases: exact round trips and uniqueness rules."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from shared.adapters.db.models import DecisionRow, TradeRow
from shared.adapters.db.repositories import SqlAlchemyDecisionRepository
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import Asset, EquitySnapshot, Portfolio, Position
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
        uow.commit()

    assert count(uow_factory, DecisionRow) == 1
    assert count(uow_factory, TradeRow) == 1


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
