"""Candle storage: the idempotent bulk upsert (one branch per dialect) and the anti-look-ahead window.

Upsert branches, chosen by dialect name:
* SQLite and PostgreSQL: `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <some value differs>`, so rows that
  are already stored identically are neither written nor counted; RETURNING counts what was written.
* Everything else, Azure SQL included: read the stored rows of the batch's key range, then bulk INSERT the new
  and bulk UPDATE the changed ones (executemany, which pyodbc's fast_executemany sends in one round trip).
  Exact counts, no MERGE quirks; the ingest timer is the only candle writer, so no concurrent upserts race.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    CompoundSelect,
    Connection,
    CursorResult,
    Insert,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from shared.adapters.db.models import CandleRow, SequenceRow
from shared.adapters.db.types import ScaledDecimal, require_aware
from shared.domain.model import Candle, interval_delta

CANDLES: Table = CandleRow.__table__  # type: ignore[assignment]
SEQUENCES: Table = SequenceRow.__table__  # type: ignore[assignment]
CANDLE_SEQUENCE = "candles"
_BUMP_REVISION = update(SEQUENCES).where(SEQUENCES.c.name == bindparam("sequence")).values(value=SEQUENCES.c.value + 1)
_BUMP_REVISION_RETURNING = _BUMP_REVISION.returning(SEQUENCES.c.value)  # OUTPUT inserted.value on Azure SQL
_SEQUENCE_VALUE = select(SEQUENCES.c.value).where(SEQUENCES.c.name == bindparam("sequence"))
KEY_COLUMNS = ("symbol", "interval", "open_time")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
CHUNK_ROWS = 1000  # rows per statement: well under SQLite's 32k and PostgreSQL's 65k bind parameters

UpsertStrategy = Callable[[Connection, list[dict[str, Any]]], int]


def candle_to_row(candle: Candle, *, normalize: bool = True) -> dict[str, Any]:
    """The row to store, times checked UTC-aware. With `normalize`, values rounded to their column's scale,
    exactly as stored, so the read-compare branch and the database agree on what "unchanged" means; ON
    CONFLICT compares in the database, after the same rounding on the way in, and needs no second copy of it."""
    row: dict[str, Any] = {
        "symbol": candle.symbol,
        "interval": candle.interval,
        "open_time": require_aware(candle.open_time),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }
    if normalize:
        for name, column_type in _VALUE_TYPES:
            row[name] = column_type.normalize(row[name])
    return row


_VALUE_TYPES = [(name, cast(ScaledDecimal, CANDLES.c[name].type)) for name in VALUE_COLUMNS]


def row_to_candle(row: Any) -> Candle:
    return Candle(row.symbol, row.interval, row.open_time, row.open, row.high, row.low, row.close, row.volume)


@functools.cache
def on_conflict_upsert_statement(dialect_name: str) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE only where a value differs, RETURNING the key (SQLite, PostgreSQL).
    An unchanged row keeps its revision, so the candle cache is not told about it again."""
    base = sqlite.insert(CANDLES) if dialect_name == "sqlite" else postgresql.insert(CANDLES)
    excluded = base.excluded
    changed = or_(*(CANDLES.c[name] != excluded[name] for name in VALUE_COLUMNS))
    return base.on_conflict_do_update(
        index_elements=[CANDLES.c[name] for name in KEY_COLUMNS],
        set_={name: excluded[name] for name in (*VALUE_COLUMNS, "revision")},
        where=changed,
    ).returning(CANDLES.c.symbol)


def upsert_on_conflict(connection: Connection, rows: list[dict[str, Any]]) -> int:
    dialect_name = connection.dialect.name
    statement = on_conflict_upsert_statement(dialect_name)
    written = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        written += len(connection.execute(statement, rows[start : start + CHUNK_ROWS]).all())
    return written


@functools.cache
def update_changed_statement() -> Any:
    """UPDATE of one candle's values (and revision) by key, for executemany (the read-compare branch)."""
    return (
        update(CANDLES)
        .where(and_(*(CANDLES.c[name] == bindparam(f"key_{name}") for name in KEY_COLUMNS)))
        .values({name: bindparam(f"new_{name}") for name in (*VALUE_COLUMNS, "revision")})
    )


def upsert_read_compare(connection: Connection, rows: list[dict[str, Any]]) -> int:
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
            for stored_row in connection.execute(
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
                    | {"new_revision": row.get("revision", 0)}
                )
    for start in range(0, len(new_rows), CHUNK_ROWS):
        connection.execute(insert(CANDLES), new_rows[start : start + CHUNK_ROWS])
    if changed_rows:
        connection.execute(update_changed_statement(), changed_rows)
    return len(new_rows) + len(changed_rows)


UPSERT_STRATEGIES: dict[str, UpsertStrategy] = {
    "sqlite": upsert_on_conflict,
    "postgresql": upsert_on_conflict,
}


_WINDOW = (
    select(CANDLES)
    .where(
        CANDLES.c.symbol == bindparam("symbol"),
        CANDLES.c.interval == bindparam("interval"),
        CANDLES.c.open_time <= bindparam("latest_open"),
    )
    .order_by(CANDLES.c.open_time.desc())
    .limit(bindparam("count"))
)
_AFTER = select(CANDLES).where(
    CANDLES.c.symbol == bindparam("symbol"),
    CANDLES.c.interval == bindparam("interval"),
    CANDLES.c.open_time > bindparam("latest_open"),
)
_CHANGED_SINCE = select(CANDLES).where(CANDLES.c.revision > bindparam("seen")).order_by(CANDLES.c.revision)
_MAX_REVISION = select(func.coalesce(func.max(CANDLES.c.revision), 0))
_LATEST_OPEN = (
    select(CANDLES.c.open_time)
    .where(CANDLES.c.symbol == bindparam("symbol"), CANDLES.c.interval == bindparam("interval"))
    .order_by(CANDLES.c.open_time.desc())
    .limit(1)
)


@functools.cache
def _latest_open_times_statement(count: int) -> CompoundSelect[Any]:
    # One backward seek per symbol on the key, all in one round trip (GROUP BY would read every row).
    def newest(index: int) -> Any:
        return (
            select(CANDLES.c.open_time)
            .where(CANDLES.c.symbol == bindparam(f"symbol_{index}"), CANDLES.c.interval == bindparam("interval"))
            .order_by(CANDLES.c.open_time.desc())
            .limit(1)
            .scalar_subquery()
        )

    return union_all(
        *(select(literal(index).label("position"), newest(index).label("open_time")) for index in range(count))
    )


class SqlAlchemyCandleRepository:
    """Candles keyed on (symbol, interval, open_time); see the module docstring for the upsert branches.

    With a `CandleCache`, `window` answers from memory after bringing the cache up to date with one indexed
    query for the rows changed since its last look (every upsert numbers what it writes). A unit of work that
    has written candles itself bypasses the cache: its rows are not committed, and may never be."""

    def __init__(
        self,
        connection: Connection,
        *,
        upsert_strategy: UpsertStrategy | None = None,
        cache: CandleCache | None = None,
    ) -> None:
        self._connection = connection
        dialect_name = connection.dialect.name
        self._upsert = upsert_strategy or UPSERT_STRATEGIES.get(dialect_name, upsert_read_compare)
        self._cache = cache
        self._wrote = False

    def upsert(self, candles: Sequence[Candle]) -> int:
        normalize = self._upsert is not upsert_on_conflict
        rows = _last_per_key(candle_to_row(candle, normalize=normalize) for candle in candles)
        if not rows:
            return 0
        self._wrote = True
        revision = next_revision(self._connection)
        for row in rows:
            row["revision"] = revision
        return self._upsert(self._connection, rows)

    def window(self, symbols: Iterable[str], interval: str, *, at: datetime, count: int) -> dict[str, list[Candle]]:
        # close_time <= at  <=>  open_time <= at - interval: a bound on the key column, so each symbol is one
        # backward index seek of `count` rows, and a candle still open at `at` can never be returned.
        latest_open = require_aware(at) - interval_delta(interval)
        if count <= 0:
            return {}
        unique = list(dict.fromkeys(symbols))
        if self._cache is not None and not self._wrote:
            return self._cache.window(self._connection, unique, interval, latest_open=latest_open, count=count)
        result: dict[str, list[Candle]] = {}
        for symbol in unique:
            candles = read_window(self._connection, symbol, interval, latest_open=latest_open, count=count)
            if candles:
                result[symbol] = candles
        return result

    def latest_open_time(self, symbol: str, interval: str) -> datetime | None:
        # The key's type, so the result comes back UTC-aware like every stored time.
        latest: datetime | None = self._connection.execute(
            _LATEST_OPEN, {"symbol": symbol, "interval": interval}
        ).scalar_one_or_none()
        return latest

    def latest_open_times(self, symbols: Iterable[str], interval: str) -> dict[str, datetime | None]:
        unique = list(dict.fromkeys(symbols))
        if not unique:
            return {}
        parameters: dict[str, Any] = {f"symbol_{i}": symbol for i, symbol in enumerate(unique)}
        parameters["interval"] = interval
        latest: dict[str, datetime | None] = dict.fromkeys(unique)
        statement = _latest_open_times_statement(len(unique))
        for row in self._connection.execute(statement, parameters):
            # A scalar subquery loses the column's type on some dialects: convert like the column would.
            latest[unique[row.position]] = _as_utc(row.open_time)
        return latest


def read_window(
    connection: Connection, symbol: str, interval: str, *, latest_open: datetime, count: int
) -> list[Candle]:
    """The last `count` candles of one series opening at or before `latest_open`, ascending."""
    parameters = {"symbol": symbol, "interval": interval, "latest_open": latest_open, "count": count}
    candles = [row_to_candle(row) for row in connection.execute(_WINDOW, parameters)]
    candles.reverse()
    return candles


def next_revision(connection: Connection) -> int:
    """The number for the rows of one upsert: bigger than every committed one. The counter row's write lock
    is held until commit, so concurrent writers are numbered in commit order and a reader that has seen
    revision n has seen every revision below it."""
    parameters = {"sequence": CANDLE_SEQUENCE}
    if connection.dialect.update_returning:  # one round trip: the bumped value comes back with the UPDATE
        bumped = connection.execute(_BUMP_REVISION_RETURNING, parameters).scalar_one_or_none()
        if bumped is not None:
            return int(bumped)
    elif cast(CursorResult[Any], connection.execute(_BUMP_REVISION, parameters)).rowcount:
        return int(connection.execute(_SEQUENCE_VALUE, parameters).scalar_one())
    start = connection.execute(_MAX_REVISION).scalar_one() + 1
    try:
        with connection.begin_nested():
            connection.execute(insert(SEQUENCES), {"name": CANDLE_SEQUENCE, "value": start})
    except IntegrityError:  # a concurrent first writer created the counter row: bump it after that one commits
        return next_revision(connection)
    return int(start)


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(slots=True)
class _Series:
    """Candles of one (symbol, interval) in open-time order: every stored candle opening at or after `floor`
    (everything when `floor` is None)."""

    floor: datetime | None
    times: list[datetime]
    candles: list[Candle]

    def put(self, candle: Candle) -> None:
        if self.floor is not None and candle.open_time < self.floor:
            return
        index = bisect.bisect_left(self.times, candle.open_time)
        if index < len(self.times) and self.times[index] == candle.open_time:
            self.candles[index] = candle
        else:
            self.times.insert(index, candle.open_time)
            self.candles.insert(index, candle)

    def trim(self, keep: int) -> None:
        if len(self.times) > 2 * keep:
            del self.times[:-keep]
            del self.candles[:-keep]
            self.floor = self.times[0]


class CandleCache:
    """Recent candles per series, shared by the units of work of one engine and kept exact: before every
    answer it applies the rows whose revision is above the highest it has applied (an indexed range read,
    usually a handful of rows), and a series it cannot answer from memory is read from the database.
    Candles are immutable values and the window never looks past `latest_open`, so a cached answer is the
    database's answer."""

    def __init__(self, *, keep_per_series: int = 2000) -> None:
        self._lock = threading.Lock()
        self._keep = keep_per_series
        self._seen: int | None = None
        self._series: dict[tuple[str, str], _Series] = {}

    def clear(self) -> None:
        with self._lock:
            self._seen = None
            self._series.clear()

    def window(
        self, connection: Connection, symbols: list[str], interval: str, *, latest_open: datetime, count: int
    ) -> dict[str, list[Candle]]:
        with self._lock:
            self._catch_up(connection)
            result: dict[str, list[Candle]] = {}
            for symbol in symbols:
                series = self._series.get((symbol, interval))
                end = bisect.bisect_right(series.times, latest_open) if series is not None else 0
                if series is None or (end < count and series.floor is not None):
                    series = self._load(connection, symbol, interval, latest_open=latest_open, count=count)
                    end = bisect.bisect_right(series.times, latest_open)
                candles = series.candles[max(0, end - count) : end]
                series.trim(max(self._keep, count))
                if candles:
                    result[symbol] = candles
            return result

    def _catch_up(self, connection: Connection) -> None:
        if self._seen is None:
            # Read the high-water mark before any series: a change committed after it is above it.
            self._seen = int(connection.execute(_MAX_REVISION).scalar_one())
            return
        for row in connection.execute(_CHANGED_SINCE, {"seen": self._seen}):
            series = self._series.get((row.symbol, row.interval))
            if series is not None:
                series.put(row_to_candle(row))
            self._seen = max(self._seen, row.revision)

    def _load(
        self, connection: Connection, symbol: str, interval: str, *, latest_open: datetime, count: int
    ) -> _Series:
        window = read_window(connection, symbol, interval, latest_open=latest_open, count=count)
        parameters = {"symbol": symbol, "interval": interval, "latest_open": latest_open}
        later = [row_to_candle(row) for row in connection.execute(_AFTER, parameters)]
        later.sort(key=lambda candle: candle.open_time)
        candles = window + later
        floor = window[0].open_time if len(window) == count else None  # fewer: the series' whole history
        series = self._series[(symbol, interval)] = _Series(floor, [c.open_time for c in candles], candles)
        return series


def _last_per_key(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key (the last wins): a batch must not conflict with itself."""
    by_key = {(row["symbol"], row["interval"], row["open_time"]): row for row in rows}
    return list(by_key.values())
