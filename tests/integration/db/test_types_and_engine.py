"""Column types (exact decimals, UTC-only times) and engine set-up per dialect."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.dialects import mssql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError, StatementError

from shared.adapters.db.engine import make_engine, normalize_database_url
from shared.adapters.db.models import CycleRow
from shared.adapters.db.queries import _latest_candle_per_asset
from shared.adapters.db.types import ScaledDecimal, UTCDateTime
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.services.ports import CycleRecord

SCALED = ScaledDecimal()
SQLITE = sqlite.dialect()


@given(st.decimals(min_value=Decimal(-(10**10)), max_value=Decimal(10**10), places=8, allow_nan=False))
def test_scaled_decimal_round_trip_is_exact(value: Decimal) -> None:
    stored = SCALED.process_bind_param(value, SQLITE)
    assert isinstance(stored, int)
    assert SCALED.process_result_value(stored, SQLITE) == value


@given(st.decimals(allow_nan=False, allow_infinity=False) | st.decimals(min_value=-(10**11), max_value=10**11))
def test_scaled_decimal_rounds_exactly_like_quantize(value: Decimal) -> None:
    # The bind's fast path must agree with the reference: quantize half-even to the scale, then range-check.
    try:
        expected: int | None = int(value.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN).scaleb(8))
    except InvalidOperation:
        expected = None
    if expected is None or abs(expected) > 2**63 - 1:
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by reason
            SCALED.process_bind_param(value, SQLITE)
    else:
        assert SCALED.process_bind_param(value, SQLITE) == expected


def test_scaled_decimal_order_matches_numeric_order() -> None:
    values = [Decimal("-1.5"), Decimal("0.00000001"), Decimal("0.1"), Decimal(2), Decimal("91000000000")]
    assert sorted(values, key=lambda v: SCALED.process_bind_param(v, SQLITE) or 0) == values


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("1e11"), Decimal("1e40"), 1.5, "1", True])
def test_scaled_decimal_refuses_what_it_cannot_store_exactly(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by reason
        SCALED.process_bind_param(bad, SQLITE)  # type: ignore[arg-type]


def test_utc_datetime_refuses_naive_and_normalizes_to_utc() -> None:
    column = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2024, 1, 1), SQLITE)
    plus_two = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert column.process_bind_param(plus_two, SQLITE) == datetime(2024, 1, 1, 10)
    assert column.process_result_value(datetime(2024, 1, 1, 10), SQLITE) == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_naive_datetime_never_reaches_the_database(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    naive = datetime(2024, 1, 1)
    record = CycleRecord(naive, "a" * 64, 1, 1, 0, naive, naive)
    with uow_factory() as uow, pytest.raises(ValueError, match="naive"):
        uow.cycles.add(record)
    with uow_factory() as uow, pytest.raises(StatementError, match="naive"):  # through the ORM, same rule
        uow.connection.execute(select(CycleRow).where(CycleRow.cycle_time == naive)).all()


def test_times_come_back_utc_aware(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    at = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
    with uow_factory() as uow:
        uow.cycles.add(CycleRecord(at, "a" * 64, 1, 1, 0, at, at))
        uow.commit()
    with uow_factory() as uow:
        stored = uow.cycles.latest_time()
    assert stored == at
    assert stored is not None
    assert stored.tzinfo == UTC


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)))
def test_sqlite_times_are_stored_in_sqlalchemys_own_text_format(moment: datetime) -> None:
    """The fast writer must write exactly what SQLAlchemy's SQLite DATETIME writes: rows stored before it, and
    every comparison of times as text in SQL, depend on it."""
    ours = UTCDateTime().load_dialect_impl(SQLITE).bind_processor(SQLITE)
    reference = sqlite.DATETIME().bind_processor(SQLITE)
    assert ours is not None
    assert reference is not None
    assert ours(moment) == reference(moment)
    assert ours(None) is None


def test_column_types_per_dialect() -> None:
    assert str(UTCDateTime().compile(dialect=mssql.dialect())) == "DATETIME2"
    assert str(UTCDateTime().compile(dialect=postgresql.dialect())) == "TIMESTAMP WITHOUT TIME ZONE"
    assert str(SCALED.compile(dialect=SQLITE)) == "BIGINT"


def test_url_normalization() -> None:
    assert normalize_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_database_url("mssql://u@h/db").drivername == "mssql+pyodbc"
    assert normalize_database_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_engine_creates_the_folder_and_sets_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'race.db'}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert (tmp_path / "a" / "b").is_dir()
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 30_000}


def test_sqlite_unit_of_work_takes_the_write_lock_when_it_begins(tmp_path: Path) -> None:
    """A unit of work begins IMMEDIATE (its first read already holds the write lock); a plain engine transaction
    begins DEFERRED and is still a real transaction (rolled back unless committed)."""
    path = tmp_path / "race.db"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with engine.connect() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            connection.rollback()
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            other.execute("BEGIN IMMEDIATE")  # a deferred reader does not hold the write lock
            other.execute("ROLLBACK")
        with SqlAlchemyUnitOfWorkFactory(engine)() as uow:
            assert uow.connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released when the unit of work ends
        other.execute("ROLLBACK")
        with SqlAlchemyUnitOfWorkFactory(engine)():
            pass  # ran no statement: its begin mode must not leak into the next checkout of the connection
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").scalar()
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine, uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    from shared.domain.model import Portfolio

    with uow_factory() as uow, pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        uow.portfolios.save(Portfolio(12345, Decimal(1)))


def test_read_queries_compile_for_azure_sql() -> None:
    compiled = _latest_candle_per_asset("1h").compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True})
    assert "(SELECT TOP 1 candles.[close]" in str(compiled)
