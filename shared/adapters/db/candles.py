"""Candle storage: the idempotent bulk upsert (one branch per dialect) and the anti-look-ahead window.

Upsert branches, chosen by dialect name:
* SQLite and PostgreSQL: `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <some value differs>`, so rows that
  are already stored identically are neither written nor counted; RETURNING counts what was written.
* Everything else, Azure SQL included: read the stored rows of the batch's key range, then bulk INSERT the new
  and bulk UPDATE the changed ones (executemany, which pyodbc's fast_executemany sends in one round trip).
  Exact counts, no MERGE quirks; the ingest timer is the only candle writer, so no concurrent upserts race.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.adapters.db.models import CandleRow
from shared.adapters.db.types import ScaledDecimal, require_aware
from shared.domain.model import Candle, interval_delta

CANDLES: Table = CandleRow.__table__  # type: ignore[assignment]
KEY_COLUMNS = ("symbol", "interval", "open_time")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
CHUNK_ROWS = 1000  # rows per statement: well under SQLite's 32k and PostgreSQL's 65k bind parameters

UpsertStrategy = Callable[[Session, list[dict[str, Any]]], int]


def candle_to_row(candle: Candle) -> dict[str, Any]:
    """The row exactly as stored: times checked UTC-aware, values rounded to their column's scale, so the
    read-compare branch and the database agree on what "unchanged" means."""
    row: dict[str, Any] = {
        "symbol": candle.symbol,
        "interval": candle.interval,
        "open_time": require_aware(candle.open_time),
    }
    for name in VALUE_COLUMNS:
        column_type = CANDLES.c[name].type
        assert isinstance(column_type, ScaledDecimal)
        row[name] = column_type.normalize(getattr(candle, name))
    return row


def row_to_candle(row: Any) -> Candle:
    return Candle(row.symbol, row.interval, row.open_time, row.open, row.high, row.low, row.close, row.volume)


def on_conflict_upsert_statement(dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE only where a value differs, RETURNING the key (SQLite, PostgreSQL)."""
    base = sqlite.insert(CANDLES) if dialect_name == "sqlite" else postgresql.insert(CANDLES)
    excluded = base.excluded
    changed = or_(*(CANDLES.c[name] != excluded[name] for name in VALUE_COLUMNS))
    return base.on_conflict_do_update(
        index_elements=[CANDLES.c[name] for name in KEY_COLUMNS],
        set_={name: excluded[name] for name in VALUE_COLUMNS},
        where=changed,
    ).returning(CANDLES.c.symbol)


def upsert_on_conflict(session: Session, rows: list[dict[str, Any]]) -> int:
    dialect_name = session.get_bind().dialect.name
    statement = on_conflict_upsert_statement(dialect_name)
    written = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        written += len(session.execute(statement, rows[start : start + CHUNK_ROWS]).all())
    return written


def update_changed_statement() -> Any:
    """UPDATE of one candle's values by key, for executemany (the read-compare branch)."""
    return (
        update(CANDLES)
        .where(and_(*(CANDLES.c[name] == bindparam(f"key_{name}") for name in KEY_COLUMNS)))
        .values({name: bindparam(f"new_{name}") for name in VALUE_COLUMNS})
    )


def upsert_read_compare(session: Session, rows: list[dict[str, Any]]) -> int:
    """Portable upsert: one indexed range read per (symbol, interval), then bulk insert/update of the difference."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["symbol"], row["interval"])].append(row)
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for (symbol, interval), group in groups.items():
        times = [row["open_time"] for row in group]
        stored = {
            stored_row.open_time: tuple(stored_row[1:])
            for stored_row in session.execute(
                select(CANDLES.c.open_time, *(CANDLES.c[name] for name in VALUE_COLUMNS)).where(
                    CANDLES.c.symbol == symbol,
                    CANDLES.c.interval == interval,
                    CANDLES.c.open_time.between(min(times), max(times)),
                )
            )
        }
        for row in group:
            values = tuple(row[name] for name in VALUE_COLUMNS)
            previous = stored.get(row["open_time"])
            if previous is None:
                new_rows.append(row)
            elif previous != values:
                changed_rows.append(
                    {f"key_{name}": row[name] for name in KEY_COLUMNS}
                    | {f"new_{name}": row[name] for name in VALUE_COLUMNS}
                )
    for start in range(0, len(new_rows), CHUNK_ROWS):
        session.execute(insert(CANDLES), new_rows[start : start + CHUNK_ROWS])
    if changed_rows:
        session.execute(update_changed_statement(), changed_rows)
    return len(new_rows) + len(changed_rows)


UPSERT_STRATEGIES: dict[str, UpsertStrategy] = {
    "sqlite": upsert_on_conflict,
    "postgresql": upsert_on_conflict,
}


class SqlAlchemyCandleRepository:
    """Candles keyed on (symbol, interval, open_time); see the module docstring for the upsert branches."""

    def __init__(self, session: Session, *, upsert_strategy: UpsertStrategy | None = None) -> None:
        self._session = session
        dialect_name = session.get_bind().dialect.name
        self._upsert = upsert_strategy or UPSERT_STRATEGIES.get(dialect_name, upsert_read_compare)

    def upsert(self, candles: Sequence[Candle]) -> int:
        rows = _last_per_key(candle_to_row(candle) for candle in candles)
        return self._upsert(self._session, rows) if rows else 0

    def window(self, symbols: Iterable[str], interval: str, *, at: datetime, count: int) -> dict[str, list[Candle]]:
        # close_time <= at  <=>  open_time <= at - interval: a bound on the key column, so each symbol is one
        # backward index seek of `count` rows, and a candle still open at `at` can never be returned.
        latest_open = require_aware(at) - interval_delta(interval)
        result: dict[str, list[Candle]] = {}
        if count <= 0:
            return result
        for symbol in dict.fromkeys(symbols):
            statement = (
                select(CANDLES)
                .where(CANDLES.c.symbol == symbol, CANDLES.c.interval == interval, CANDLES.c.open_time <= latest_open)
                .order_by(CANDLES.c.open_time.desc())
                .limit(count)
            )
            candles = [row_to_candle(row) for row in self._session.execute(statement)]
            if candles:
                candles.reverse()
                result[symbol] = candles
        return result

    def latest_open_time(self, symbol: str, interval: str) -> datetime | None:
        statement = select(func.max(CANDLES.c.open_time)).where(
            CANDLES.c.symbol == symbol, CANDLES.c.interval == interval
        )
        # max() keeps the column's type, so the result comes back UTC-aware like every stored time.
        latest: datetime | None = self._session.execute(statement).scalar_one_or_none()
        return latest


def _last_per_key(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key (the last wins): a batch must not conflict with itself."""
    by_key = {(row["symbol"], row["interval"], row["open_time"]): row for row in rows}
    return list(by_key.values())
