"""The migrations build exactly the schema the models describe, on every dialect, online and offline."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Integer, column, func, insert, inspect, select

from shared.adapters.db.decision_inputs import NO_INPUTS
from shared.adapters.db.engine import make_engine
from shared.adapters.db.migrate import alembic_config, main, offline_sql, upgrade
from shared.adapters.db.models import metadata
from shared.adapters.db.queries import SqlAlchemyRaceQueries
from shared.adapters.db.replay_store import SqlAlchemyReplayStore
from shared.adapters.db.repositories import (
    DECISIONS,
    EQUITY,
    PORTFOLIOS,
    SqlAlchemyAgentRepository,
    SqlAlchemyEquityRepository,
    _decision_values,
)
from shared.adapters.db.types import UTCDateTime
from shared.domain.decision_inputs import DecisionInputs
from shared.domain.model import Portfolio, Position
from shared.domain.rules import RaceRules
from shared.services.ports import DecisionRecord
from tests.integration.db.builders import HOUR, T0, agent, decision_record

LEGACY_AMOUNTS = ("equity", "cash", "peak_equity", "max_drawdown")
REPLAY_INPUT_COLUMNS = tuple(NO_INPUTS)  # added by 0007
TABLES = {
    "assets",
    "candles",
    "agents",
    "portfolios",
    "positions",
    "decisions",
    "trades",
    "equity_snapshots",
    "cycles",
    "sequences",
    "agent_statistics",
}


def test_upgrade_creates_the_schema_the_models_describe(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    upgrade(empty_db_url)  # already at head: a no-op, not an error

    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            assert TABLES | {"alembic_version"} == set(inspect(connection).get_table_names())
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(empty_db_url)


def test_upgrade_to_0004_totals_the_llm_usage_already_recorded(empty_db_url: str) -> None:
    upgrade(empty_db_url, revision="0003")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:  # the 0003 schema: no usage columns yet
            agents = SqlAlchemyAgentRepository(connection)
            llm, baseline = agents.add(agent("llm")).id, agents.add(agent("baseline")).id
            connection.execute(
                insert(PORTFOLIOS),
                [
                    {"agent_id": a, "cash": 1, "fees_paid": 0, "trade_count": 0, "updated_at": T0, "version": 1}
                    for a in (llm, baseline)
                ],
            )
            records = [
                decision_record(llm, T0, trades=0),
                decision_record(llm, T0 + HOUR, trades=0),
                decision_record(baseline, T0, hold="timeout"),
            ]
            connection.execute(insert(DECISIONS), [_pre_0007_values(r) for r in records])
        upgrade(empty_db_url)
        summaries = {s.agent.id: s for s in SqlAlchemyRaceQueries(engine).agent_summaries(starting_cash=Decimal(1))}
    finally:
        engine.dispose()
    assert (summaries[llm].prompt_tokens, summaries[llm].completion_tokens) == (1800, 160)
    assert summaries[llm].llm_cost_usd == Decimal("0.00024690")
    assert (summaries[baseline].prompt_tokens, summaries[baseline].llm_cost_usd) == (0, 0)


def test_upgrade_to_0005_numbers_the_equity_snapshots_already_taken(empty_db_url: str) -> None:
    upgrade(empty_db_url, revision="0004")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:  # the 0004 schema: snapshots without numbers, two agents interleaved
            agents = SqlAlchemyAgentRepository(connection)
            first, second = agents.add(agent("first")).id, agents.add(agent("second")).id
            legacy = sa.table(
                "equity_snapshots",
                column("agent_id", Integer()),
                column("at", UTCDateTime()),
                *(column(name, BigInteger()) for name in LEGACY_AMOUNTS),
            )
            hours = {first: [5, 0, 3, 1], second: [2, 4]}  # written out of order: numbering follows time
            connection.execute(
                insert(legacy),
                [
                    {"agent_id": a, "at": T0 + h * HOUR, **dict.fromkeys(LEGACY_AMOUNTS, 100)}
                    for a, agent_hours in hours.items()
                    for h in agent_hours
                ],
            )
        upgrade(empty_db_url)
        with engine.connect() as connection:
            numbered = connection.execute(
                select(EQUITY.c.agent_id, EQUITY.c.at, EQUITY.c.ordinal).order_by(EQUITY.c.agent_id, EQUITY.c.at)
            ).all()
            latest = SqlAlchemyEquityRepository(connection).latest(first)
    finally:
        engine.dispose()
    assert [(a, (at - T0) // HOUR, n) for a, at, n in numbered] == [
        (first, 0, 1),
        (first, 1, 2),
        (first, 3, 3),
        (first, 5, 4),
        (second, 2, 1),
        (second, 4, 2),
    ]
    assert latest is not None
    assert latest.next(at=T0 + 6 * HOUR, equity=Decimal(1), cash=Decimal(1)).ordinal == 5  # the job carries on


def _pre_0007_values(record: DecisionRecord) -> dict[str, Any]:
    """A decision row as the schema before 0007 stores it (no replay inputs)."""
    return {k: v for k, v in _decision_values(record, record.cycle_time).items() if k not in REPLAY_INPUT_COLUMNS}


def test_upgrade_to_0007_keeps_earlier_decisions_without_replay_inputs(empty_db_url: str) -> None:
    upgrade(empty_db_url, revision="0005")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:  # the 0005 schema: decisions without replay inputs
            decider = SqlAlchemyAgentRepository(connection).add(agent("old")).id
            connection.execute(insert(DECISIONS), [_pre_0007_values(decision_record(decider, T0, trades=0))])
        upgrade(empty_db_url)
        with engine.connect() as connection:
            columns = {c["name"]: c for c in inspect(connection).get_columns("decisions")}
            decision_id = connection.execute(select(DECISIONS.c.id)).scalar_one()
        old = SqlAlchemyReplayStore(engine).decision(decision_id)
        assert old is not None
        assert (old.inputs, old.inputs_problem) == (None, None)  # the replay then refuses it and says why

        with engine.begin() as connection:  # a new decision keeps them, read back exactly
            connection.execute(insert(DECISIONS), [_decision_values(_with_inputs(decider), T0 + HOUR)])
            new_id = connection.execute(select(func.max(DECISIONS.c.id))).scalar_one()
        new = SqlAlchemyReplayStore(engine).decision(new_id)
        assert new is not None
        assert new.inputs is not None
        assert new.inputs.portfolio == Portfolio(
            decider, Decimal("12.5"), {"BTC": Position(Decimal("0.1"), Decimal(3))}
        )
        assert new.inputs.model == {"provider": "baseline", "model": "old", "params": {}}
        assert (new.inputs.symbols, new.inputs.interval, new.inputs.candles) == (("BTC",), "1h", 48)

        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        with engine.connect() as connection:
            after = {c["name"] for c in inspect(connection).get_columns("decisions")}
    finally:
        engine.dispose()
    assert set(REPLAY_INPUT_COLUMNS) <= set(columns)
    assert all(columns[name]["nullable"] for name in REPLAY_INPUT_COLUMNS)
    assert not set(REPLAY_INPUT_COLUMNS) & after
    upgrade(empty_db_url)


def _with_inputs(agent_id: int) -> DecisionRecord:
    record = decision_record(agent_id, T0 + HOUR, trades=0)
    inputs = DecisionInputs(
        Portfolio(agent_id, Decimal("12.5"), {"BTC": Position(Decimal("0.1"), Decimal(3))}),
        RaceRules(),
        ("BTC",),
        "1h",
        48,
        {"provider": "baseline", "model": "old", "params": {}},
    )
    return replace(record, decision=replace(record.decision, inputs=inputs))


def test_upgrade_to_0006_adds_an_empty_statistics_table_and_downgrade_drops_it(empty_db_url: str) -> None:
    upgrade(empty_db_url, revision="0005")
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            assert "agent_statistics" not in inspect(connection).get_table_names()
        upgrade(empty_db_url)
        with engine.connect() as connection:
            columns = {c["name"]: c for c in inspect(connection).get_columns("agent_statistics")}
            assert set(columns) == {"agent_id", "computed_for", "computed_at", "observations", "payload"}
            assert not any(c["nullable"] for c in columns.values())
            assert inspect(connection).get_pk_constraint("agent_statistics")["constrained_columns"] == ["agent_id"]
            assert connection.execute(sa.text("SELECT COUNT(*) FROM agent_statistics")).scalar_one() == 0
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        with engine.connect() as connection:
            assert "agent_statistics" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_upgrade_creates_the_sqlite_file_folder(tmp_path: Path) -> None:
    path = tmp_path / "does" / "not" / "exist" / "race.db"
    upgrade(f"sqlite:///{path}")
    assert path.is_file()


@pytest.mark.parametrize("dialect", ["mssql", "postgresql", "sqlite"])
def test_offline_script_creates_every_table(dialect: str) -> None:
    script = offline_sql(dialect)
    for table in TABLES:
        assert f"CREATE TABLE {table} (" in script
    assert "INSERT INTO alembic_version" in script


def test_azure_sql_script_is_tsql_without_driver_or_server(tmp_path: Path) -> None:
    output = tmp_path / "build" / "azure-sql-migration.sql"
    assert main(["sql", "--dialect", "mssql", "-o", str(output)]) == 0
    script = output.read_text(encoding="utf-8")
    assert "\nGO\n" in script  # T-SQL batch separators
    assert "DATETIME2" in script  # not DATETIME, which rounds to 3.33 ms
    assert "NVARCHAR(max)" in script
    assert "NTEXT" not in script
    assert "[open] BIGINT" in script  # reserved words quoted the T-SQL way
    assert "IDENTITY" in script
