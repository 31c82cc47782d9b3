"""Column types that behave the same on SQLite, PostgreSQL and Azure SQL.

* `ScaledDecimal`: a `Decimal` stored as an integer count of 10^-scale units in a BIGINT. Exact on every
  dialect (SQLite's NUMERIC goes through binary floats), sortable and comparable in SQL.
* `UTCDateTime`: naive UTC in the database (every dialect has that), always UTC-aware in Python; naive input
  is refused, because guessing its zone is how look-ahead and off-by-hours bugs start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.dialects import mssql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from shared.domain.money import SCALE

BIGINT_MAX = 2**63 - 1


class ScaledDecimal(TypeDecorator[Decimal]):
    """`Decimal` <-> BIGINT holding value x 10^scale.

    Digits finer than the scale are rounded half-even (the domain's `money.q`), so what is read back is what the
    domain would have computed; values beyond the BIGINT range raise ValueError instead of wrapping.
    The default scale (8) allows magnitudes up to about 9.2e10; pass a smaller scale for larger magnitudes.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        self.scale = scale
        self._scale = scale
        self._negative_scale = -scale
        self._quantum = Decimal(1).scaleb(-scale)

    def normalize(self, value: Decimal | int) -> Decimal:
        """The value exactly as it will be read back from the column."""
        return self._to_decimal(self._to_integer(value))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        return None if value is None else self._to_integer(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else self._to_decimal(int(value))

    def process_literal_param(self, value: Decimal | int | None, dialect: Dialect) -> str:
        return "NULL" if value is None else str(self._to_integer(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

    def _to_integer(self, value: Decimal | int) -> int:
        if type(value) is Decimal and value.is_finite():
            # Fast path, exact: when shifting the point leaves an integer, no digit finer than the scale exists,
            # so quantizing would not change the value (a 28-digit rounding that hides finer digits cannot
            # leave an integer unless those digits are far below half a unit, where half-even agrees).
            shifted = value.scaleb(self._scale)
            scaled = int(shifted)
            if scaled == shifted and -BIGINT_MAX <= scaled <= BIGINT_MAX:
                return scaled
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise ValueError(f"expected a Decimal, got {type(value).__name__}: {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"cannot store a non-finite number: {value!r}")
        try:
            scaled = int(Decimal(value).quantize(self._quantum, rounding=ROUND_HALF_EVEN).scaleb(self.scale))
        except InvalidOperation:  # more digits than the decimal context holds: far beyond BIGINT anyway
            scaled = BIGINT_MAX + 1
        if abs(scaled) > BIGINT_MAX:
            raise ValueError(f"{value} does not fit a scaled BIGINT at scale {self.scale}")
        return scaled

    def _to_decimal(self, scaled: int) -> Decimal:
        return Decimal(scaled).scaleb(self._negative_scale)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC `datetime` <-> naive UTC timestamp (DATETIME2 on Azure SQL: DATETIME rounds to 3.33 ms)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "mssql":
            return dialect.type_descriptor(mssql.DATETIME2())  # type: ignore[no-untyped-call]
        if dialect.name == "sqlite":
            return SQLiteDateTime()  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME in SQLAlchemy's default storage format (`2024-01-01 00:00:00.000000`), written by
    datetime's own C `isoformat` instead of a dict and a %-format per value: the same text, a fraction of the
    cost, which a backtest pays for every time it stores (decisions, trades, marks, candles, cycles)."""

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], str | None]:
        def process(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat(" ", "microseconds")

        return process


def to_naive_utc(value: datetime) -> datetime:
    """The naive UTC form stored in the database; ValueError for a naive (zone-less) datetime."""
    if type(value) is datetime and value.tzinfo is UTC:  # the common case, without the conversion
        return value.replace(tzinfo=None)
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC).replace(tzinfo=None)


def require_aware(value: datetime) -> datetime:
    """`value` in UTC; ValueError for a naive datetime (checked before a query, for a clear error)."""
    if type(value) is datetime and value.tzinfo is UTC:
        return value
    return to_naive_utc(value).replace(tzinfo=UTC)
