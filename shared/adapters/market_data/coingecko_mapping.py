"""CoinGecko's `/coins/{id}/ohlc` rows -> the project's candles (interval + OPEN time), without look-ahead.

CoinGecko picks the candle length from `days` (1-2: 30 minutes, 3-30: 4 hours, 31+: 4 days; paid plans can ask
for hourly) and stamps each row with the candle's CLOSE time in ms. The race's candles are keyed by open time,
so a row stamped T with length L becomes the candle opening at T - L. Intervals CoinGecko does not serve on the
free plan are built from the finer ones it does: a 1h candle from the two aligned 30-minute halves of the hour
(open of the first, close of the second, max high, min low), a 1d candle from the six 4-hour candles of the UTC
day. A bucket is emitted only when every part is present, sound and closed by `end`, so a live candle is
never a partial one, and a candle is stored only once it has closed: replayed and live data are the same kind
of thing. OHLC rows carry no volume: it becomes 0 (CoinGecko's volumes are rolling 24h totals, another
quantity, and fetching them would cost a second call per asset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.adapters.resilience import PermanentError
from shared.domain.model import Candle, interval_delta
from shared.domain.snapshot import candle_problem

ZERO_VOLUME = Decimal(0)
DAY = timedelta(days=1)


class CoinGeckoResponseError(PermanentError):
    """A 200 response whose body is not what the endpoint documents (wrong shape, not JSON). The message names
    the endpoint; the body is not retried (the same request would return the same thing)."""


@dataclass(frozen=True, slots=True)
class OhlcSource:
    """How a race interval is obtained from CoinGecko: the candle length asked for and the `days` range that
    yields it (`min_days`..`max_days`, so older history is out of reach at that length)."""

    interval: str  # CoinGecko's candle length
    min_days: int
    max_days: int

    def days_for(self, start: datetime, now: datetime) -> int:
        """The smallest `days` that reaches back to `start`, within the range that keeps this candle length."""
        needed = math.ceil(max((now - start) / DAY, 0.0))
        return max(self.min_days, min(self.max_days, needed))

    def reach(self, now: datetime) -> datetime:
        """The oldest close time this candle length can be fetched for."""
        return now - self.max_days * DAY


THIRTY_MINUTES = OhlcSource("30m", 1, 2)
FOUR_HOURS = OhlcSource("4h", 3, 30)
SOURCES: dict[str, OhlcSource] = {"30m": THIRTY_MINUTES, "1h": THIRTY_MINUTES, "4h": FOUR_HOURS, "1d": FOUR_HOURS}


def source_for(interval: str) -> OhlcSource:
    try:
        return SOURCES[interval]
    except KeyError:
        raise ValueError(f"CoinGecko cannot serve {interval!r} candles; use one of {sorted(SOURCES)}") from None


@dataclass(frozen=True, slots=True)
class OhlcRow:
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def parse_ohlc(body: object, *, endpoint: str) -> list[OhlcRow]:
    """`[[ms, o, h, l, c], ...]` -> rows. Anything else is a CoinGeckoResponseError naming the endpoint.

    Prices must already be Decimal (the client parses JSON floats as Decimal, NaN included: NaN is a value
    problem, screened later, not a shape problem)."""
    if not isinstance(body, list):
        raise CoinGeckoResponseError(f"{endpoint}: expected a JSON array of [time, o, h, l, c], got {_kind(body)}")
    rows: list[OhlcRow] = []
    for index, row in enumerate(body):
        if not isinstance(row, list) or len(row) != 5:
            raise CoinGeckoResponseError(
                f"{endpoint}: row {index} is not [time, open, high, low, close]: {_kind(row)}"
                + (f" of {len(row)}" if isinstance(row, list) else "")
            )
        stamp, *prices = row
        if not _is_number(stamp) or not Decimal(stamp).is_finite() or Decimal(stamp) != int(stamp):
            raise CoinGeckoResponseError(f"{endpoint}: row {index} has a non-integer timestamp {stamp!r}")
        if not all(_is_number(p) for p in prices):
            raise CoinGeckoResponseError(f"{endpoint}: row {index} has a non-numeric price")
        o, h, low, c = (Decimal(p) for p in prices)
        rows.append(OhlcRow(int(stamp), o, h, low, c))
    return rows


def parse_simple_price(body: object, *, endpoint: str, ids: Sequence[str]) -> dict[str, tuple[Decimal, datetime]]:
    """`{"bitcoin": {"usd": 76975, "last_updated_at": 1779092258}, ...}` -> {id: (price, as of)}. An id
    CoinGecko does not know is simply absent from its answer (and from ours)."""
    if not isinstance(body, dict):
        raise CoinGeckoResponseError(f"{endpoint}: expected a JSON object keyed by coin id, got {_kind(body)}")
    prices: dict[str, tuple[Decimal, datetime]] = {}
    for coin_id in ids:
        entry = body.get(coin_id)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not _is_number(entry.get("usd")):
            raise CoinGeckoResponseError(f"{endpoint}: {coin_id!r} has no numeric 'usd' price")
        updated = entry.get("last_updated_at")
        if not isinstance(updated, int | Decimal | float) or isinstance(updated, bool):
            raise CoinGeckoResponseError(f"{endpoint}: {coin_id!r} has no numeric 'last_updated_at'")
        prices[coin_id] = (Decimal(entry["usd"]), datetime.fromtimestamp(int(updated), UTC))
    return prices


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


_KINDS = {dict: "an object", list: "an array", str: "a string", type(None): "null"}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class Mapped:
    candles: list[Candle]
    dropped: list[tuple[str, str]]  # (open time ISO, reason): what was not turned into a candle, and why


def to_candles(
    symbol: str, rows: Sequence[OhlcRow], *, source: str, interval: str, start: datetime, end: datetime
) -> Mapped:
    """Candles of `interval` with open_time >= start and close_time <= end, from CoinGecko rows of length
    `source`. Misaligned, unsound, not-yet-closed, duplicate and out-of-order rows are dropped with the reason,
    and a bucket missing any part is not emitted."""
    step = interval_delta(source)
    step_ms = int(step.total_seconds() * 1000)
    dropped: list[tuple[str, str]] = []
    parts: dict[datetime, Candle] = {}
    conflicting: set[datetime] = set()
    last_ms: int | None = None
    for row in rows:
        open_time = datetime.fromtimestamp(row.close_ms / 1000, UTC) - step
        label = open_time.isoformat()
        if row.close_ms % step_ms:
            dropped.append((label, f"close time not on a {source} boundary"))
            continue
        candle = Candle(symbol, source, open_time, row.open, row.high, row.low, row.close, ZERO_VOLUME)
        if last_ms is not None and row.close_ms <= last_ms:
            if row.close_ms < last_ms:
                dropped.append((label, "out of order"))
            elif parts.get(open_time) != candle:
                conflicting.add(open_time)  # two different answers for one time: trust neither
                dropped.append((label, "duplicate timestamp with different prices"))
            continue  # an identical repeat is harmless
        last_ms = row.close_ms
        if candle.close_time > end:
            continue  # still forming (CoinGecko includes the current candle): a later run stores it closed
        if (problem := candle_problem(candle, end)) is not None:
            dropped.append((label, problem))
            continue
        parts[open_time] = candle
    for open_time in conflicting:
        parts.pop(open_time, None)
    if source == interval:
        candles = [c for t, c in sorted(parts.items()) if t >= start]
    else:
        candles = _aggregate(symbol, parts, source=source, interval=interval, start=start, end=end, dropped=dropped)
    return Mapped(candles, dropped)


def _aggregate(
    symbol: str,
    parts: dict[datetime, Candle],
    *,
    source: str,
    interval: str,
    start: datetime,
    end: datetime,
    dropped: list[tuple[str, str]],
) -> list[Candle]:
    step, length = interval_delta(source), interval_delta(interval)
    count = length // step
    if count < 2 or length % step:
        raise ValueError(f"{interval} candles cannot be built from {source} ones")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets = sorted({t - (t - epoch) % length for t in parts})
    candles: list[Candle] = []
    for bucket in buckets:
        if bucket < start or bucket + length > end:
            continue  # before the window, or not closed yet: the next run builds it whole
        pieces = [parts.get(bucket + i * step) for i in range(count)]
        present = [p for p in pieces if p is not None]
        if len(present) < count:
            reason = f"only {len(present)} of its {count} {source} candles (missing or not published yet)"
            dropped.append((bucket.isoformat(), reason))
            continue
        candles.append(
            Candle(
                symbol,
                interval,
                bucket,
                present[0].open,
                max(p.high for p in present),
                min(p.low for p in present),
                present[-1].close,
                ZERO_VOLUME,
            )
        )
    return candles
