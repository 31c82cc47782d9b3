"""Candle upsert (idempotent, every dialect branch) and the anti-look-ahead window."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc

from shared.adapters.db.candles import (
    _BUMP_REVISION_RETURNING,
    CANDLES,
    SqlAlchemyCandleRepository,
    UpsertStrategy,
    next_revision,
    update_changed_statement,
    upsert_on_conflict,
    upsert_read_compare,
)
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.integration.db.builders import HOUR, T0, candle, hourly

STRATEGIES = {"native": None, "read_compare": upsert_read_compare}


def upsert(uow_factory: SqlAlchemyUnitOfWorkFactory, candles: list, strategy: UpsertStrategy | None = None) -> int:
    with uow_factory() as uow:
        repository = SqlAlchemyCandleRepository(uow.connection, upsert_strategy=strategy)
        written = repository.upsert(candles)
        uow.commit()
    return written


def stored(uow_factory: SqlAlchemyUnitOfWorkFactory, symbol: str, at: datetime, count: int = 10_000) -> list:
    with uow_factory() as uow:
        return uow.candles.window([symbol], "1h", at=at, count=count).get(symbol, [])


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=STRATEGIES.keys())
def test_second_upsert_of_the_same_data_writes_nothing(
    uow_factory: SqlAlchemyUnitOfWorkFactory, strategy: UpsertStrategy | None
) -> None:
    batch = hourly("BTC", 50) + hourly("ETH", 50)
    assert upsert(uow_factory, batch, strategy) == 100
    assert upsert(uow_factory, batch, strategy) == 0
    # Equal values written with a different exponent are still "the same data".
    same = [dataclasses.replace(c, close=c.close.quantize(Decimal("0.0001"))) for c in batch]
    assert upsert(uow_factory, same, strategy) == 0
    assert stored(uow_factory, "BTC", T0 + 50 * HOUR) == hourly("BTC", 50)


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=STRATEGIES.keys())
def test_upsert_updates_only_changed_rows_and_inserts_new_ones(
    uow_factory: SqlAlchemyUnitOfWorkFactory, strategy: UpsertStrategy | None
) -> None:
    original = hourly("BTC", 10)
    upsert(uow_factory, original, strategy)
    corrected = dataclasses.replace(original[3], close=Decimal("103.12345678"), high=Decimal(200))
    changed = [*original[:3], corrected, *original[4:], candle("BTC", T0 + 10 * HOUR, 110)]

    assert upsert(uow_factory, changed, strategy) == 2

    assert stored(uow_factory, "BTC", T0 + 11 * HOUR) == changed


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=STRATEGIES.keys())
def test_a_batch_repeating_a_key_keeps_the_last_row(
    uow_factory: SqlAlchemyUnitOfWorkFactory, strategy: UpsertStrategy | None
) -> None:
    first, second = candle("BTC", T0, 100), candle("BTC", T0, 101)
    assert upsert(uow_factory, [first, second], strategy) == 1
    assert stored(uow_factory, "BTC", T0 + HOUR) == [second]


def test_values_finer_than_the_storage_scale_are_rounded_half_even(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    fine = dataclasses.replace(candle("BTC", T0), close=Decimal("100.000000005"), volume=Decimal("1.23456"))
    upsert(uow_factory, [fine])
    [back] = stored(uow_factory, "BTC", T0 + HOUR)
    assert back.close == Decimal("100.00000000")
    assert back.volume == Decimal("1.2346")  # volume keeps 4 places: it can be a ~1e11 USD figure
    assert upsert(uow_factory, [fine]) == 0


def test_ten_thousand_candles_round_trip(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    batch = [c for symbol in ("BTC", "ETH", "SOL", "XRP", "BNB") for c in hourly(symbol, 2000)]
    assert upsert(uow_factory, batch) == 10_000
    assert upsert(uow_factory, batch) == 0
    assert stored(uow_factory, "SOL", T0 + 2000 * HOUR) == hourly("SOL", 2000)


def test_azure_sql_branch_statements_compile_for_mssql() -> None:
    dialect = mssql_pyodbc.dialect(paramstyle="qmark")  # as pyodbc sends them; pyodbc itself is not needed
    update_sql = str(update_changed_statement().compile(dialect=dialect))
    assert update_sql.startswith("UPDATE candles SET [open]=?")
    assert "WHERE candles.symbol = ? AND candles.interval = ? AND candles.open_time = ?" in update_sql
    insert_sql = str(CANDLES.insert().compile(dialect=dialect))
    assert insert_sql.startswith("INSERT INTO candles (symbol, interval, open_time, [open], high, low, [close]")


def test_native_upsert_is_chosen_for_sqlite_and_postgresql(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        repository = uow.candles
        assert isinstance(repository, SqlAlchemyCandleRepository)
        assert repository._upsert is upsert_on_conflict


def test_window_never_returns_a_candle_closing_after_the_cycle(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    upsert(uow_factory, hourly("BTC", 48) + hourly("ETH", 48))
    at = T0 + 10 * HOUR  # the 09:00 candle closed at 10:00; the 10:00 candle is still open

    with uow_factory() as uow:
        window = uow.candles.window(["BTC", "ETH", "XRP"], "1h", at=at, count=3)
        between = uow.candles.window(["BTC"], "1h", at=at + HOUR / 2, count=3)

    assert set(window) == {"BTC", "ETH"}  # no data, no key
    assert [c.open_time for c in window["BTC"]] == [T0 + 7 * HOUR, T0 + 8 * HOUR, T0 + 9 * HOUR]
    assert all(c.close_time <= at for c in window["ETH"])
    assert between["BTC"] == window["BTC"]


def test_window_reads_only_its_interval_and_handles_short_history(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    upsert(uow_factory, [*hourly("BTC", 3), candle("BTC", T0, 999, interval="1d")])
    with uow_factory() as uow:
        window = uow.candles.window(["BTC"], "1h", at=T0 + 30 * HOUR, count=48)
        daily = uow.candles.window(["BTC"], "1d", at=T0 + 23 * HOUR, count=5)
    assert window["BTC"] == hourly("BTC", 3)
    assert daily == {}  # the daily candle closes at T0 + 24h


def test_latest_open_time(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    with uow_factory() as uow:
        assert uow.candles.latest_open_time("BTC", "1h") is None
    upsert(uow_factory, hourly("BTC", 5))
    with uow_factory() as uow:
        latest = uow.candles.latest_open_time("BTC", "1h")
    assert latest == T0 + 4 * HOUR
    assert latest is not None
    assert latest.tzinfo is not None


def test_naive_times_are_refused(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    naive = dataclasses.replace(candle("BTC", T0), open_time=datetime(2024, 1, 1))
    with uow_factory() as uow:
        with pytest.raises(ValueError, match="naive"):
            uow.candles.upsert([naive])
        with pytest.raises(ValueError, match="naive"):
            uow.candles.window(["BTC"], "1h", at=datetime(2024, 1, 2), count=1)


def test_latest_open_times_in_one_call(uow_factory: SqlAlchemyUnitOfWorkFactory) -> None:
    upsert(uow_factory, hourly("BTC", 5) + hourly("ETH", 2))
    with uow_factory() as uow:
        latest = uow.candles.latest_open_times(["BTC", "ETH", "XRP"], "1h")
    assert latest == {"BTC": T0 + 4 * HOUR, "ETH": T0 + HOUR, "XRP": None}


@pytest.mark.parametrize("strategy", STRATEGIES.values(), ids=STRATEGIES.keys())
def test_cached_window_sees_corrections_and_new_candles(
    uow_factory: SqlAlchemyUnitOfWorkFactory, strategy: UpsertStrategy | None
) -> None:
    """The cache is warm after the first window; a corrected candle and a new one must both be seen next
    time, through another unit of work, and nothing after `at` ever comes back."""
    assert uow_factory.candle_cache is not None
    upsert(uow_factory, hourly("BTC", 10), strategy)
    at = T0 + 8 * HOUR
    first = stored(uow_factory, "BTC", at, count=4)
    assert [c.open_time for c in first] == [T0 + 4 * HOUR, T0 + 5 * HOUR, T0 + 6 * HOUR, T0 + 7 * HOUR]

    corrected = candle("BTC", T0 + 6 * HOUR, 555)
    upsert(uow_factory, [corrected, candle("BTC", T0 + 10 * HOUR, 777)], strategy)
    again = stored(uow_factory, "BTC", at, count=4)
    later = stored(uow_factory, "BTC", T0 + 11 * HOUR, count=2)

    assert again[2] == corrected
    assert [c.open_time for c in again] == [c.open_time for c in first]
    assert [c.close for c in later] == [Decimal(109), Decimal(777)]
    uncached = SqlAlchemyUnitOfWorkFactory(uow_factory.engine, cache_candles=False)
    assert stored(uncached, "BTC", at, count=4) == again


def test_cached_window_reads_older_history_and_bypasses_uncommitted_writes(
    uow_factory: SqlAlchemyUnitOfWorkFactory,
) -> None:
    upsert(uow_factory, hourly("BTC", 48))
    assert len(stored(uow_factory, "BTC", T0 + 48 * HOUR, count=4)) == 4  # warms the cache near the end
    assert stored(uow_factory, "BTC", T0 + 48 * HOUR, count=40) == hourly("BTC", 48)[-40:]
    assert stored(uow_factory, "BTC", T0 + 5 * HOUR, count=3) == hourly("BTC", 5)[-3:]

    with uow_factory() as uow:  # written, then rolled back: never cached
        uow.candles.upsert([candle("BTC", T0 + 48 * HOUR, 1)])
        assert uow.candles.window(["BTC"], "1h", at=T0 + 49 * HOUR, count=1)["BTC"][0].close == 1
    assert stored(uow_factory, "BTC", T0 + 49 * HOUR, count=1) == hourly("BTC", 48)[-1:]


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-then-select"])
def test_revisions_count_up_by_one_per_upsert(
    uow_factory: SqlAlchemyUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch, returning: bool
) -> None:
    monkeypatch.setattr(uow_factory.engine.dialect, "update_returning", returning)
    seen = []
    for _ in range(3):
        with uow_factory() as uow:
            seen.append(next_revision(uow.connection))
            uow.commit()
    assert seen == [seen[0], seen[0] + 1, seen[0] + 2]


def test_revision_bump_returns_its_value_on_azure_sql() -> None:
    sql = str(_BUMP_REVISION_RETURNING.compile(dialect=mssql_pyodbc.dialect(paramstyle="qmark")))
    assert sql == "UPDATE sequences SET value=(sequences.value + ?) OUTPUT inserted.value WHERE sequences.name = ?"
