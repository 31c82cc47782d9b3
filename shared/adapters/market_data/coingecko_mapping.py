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

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from shared.adapters.resilience import PermanentError
from shared.domain.model import INTERVAL_SECONDS, Candle, interval_delta
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


@dataclass(frozen=True, slots=True)
class ParsedOhlc:
    """The usable rows of one `/ohlc` answer, and each row that was not, as (label, reason): one bad row costs
    that row only, never the whole answer."""

    rows: list[OhlcRow]
    rejected: list[tuple[str, str]]


def parse_ohlc(body: object, *, endpoint: str) -> ParsedOhlc:
    """`[[ms, o, h, l, c], ...]` -> rows, validated row by row. A body that is not an array is a
    CoinGeckoResponseError naming the endpoint; a row of the wrong shape or with a value that is not a number is
    rejected with its reason, and the other rows are kept.

    Numbers may arrive as JSON numbers (the client parses them straight to Decimal, NaN included) or as decimal
    strings (CoinGecko has sent both): both are read as Decimal. NaN is a value problem, screened later."""
    if not isinstance(body, list):
        raise CoinGeckoResponseError(f"{endpoint}: expected a JSON array of [time, o, h, l, c], got {_kind(body)}")
    rows: list[OhlcRow] = []
    rejected: list[tuple[str, str]] = []
    for index, row in enumerate(body):
        label = f"row {index}"
        if not isinstance(row, list) or len(row) != 5:
            shape = _kind(row) + (f" of {len(row)}" if isinstance(row, list) else "")
            rejected.append((label, f"{label} is not [time, open, high, low, close]: {shape}"))
            continue
        stamp = _decimal(row[0])
        if stamp is None or not stamp.is_finite() or stamp != stamp.to_integral_value():
            rejected.append((label, f"{label} has a non-integer timestamp {str(row[0])[:40]!r}"))
            continue
        label = _stamp_label(int(stamp))
        prices = [_decimal(p) for p in row[1:]]
        if any(p is None for p in prices):
            rejected.append((label, f"{label} has a non-numeric price"))
            continue
        o, h, low, c = (p for p in prices if p is not None)
        rows.append(OhlcRow(int(stamp), o, h, low, c))
    return ParsedOhlc(rows, rejected)


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
        price = _decimal(entry.get("usd")) if isinstance(entry, dict) else None
        if price is None or not isinstance(entry, dict):
            raise CoinGeckoResponseError(f"{endpoint}: {coin_id!r} has no numeric 'usd' price")
        updated = _decimal(entry.get("last_updated_at"))
        if updated is None or not updated.is_finite():
            raise CoinGeckoResponseError(f"{endpoint}: {coin_id!r} has no numeric 'last_updated_at'")
        prices[coin_id] = (price, datetime.fromtimestamp(int(updated), UTC))
    return prices


def _decimal(value: object) -> Decimal | None:
    """A JSON number or a decimal string ("76975.12", " 1e3 ", "NaN") as Decimal; None for anything else
    (null, booleans, objects, text that is not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and len(value) <= 64:
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _stamp_label(close_ms: int) -> str:
    try:
        return "closing " + datetime.fromtimestamp(close_ms / 1000, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"stamp {close_ms}"


_KINDS = {dict: "an object", list: "an array", str: "a string", type(None): "null"}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class Mapped:
    candles: list[Candle]
    dropped: list[tuple[str, str]]  # (open time ISO, reason): what was not turned into a candle, and why


# Candle lengths CoinGecko answers with: by plan, by `interval=` and by `days`, and they have changed over the
# years, so the length of an answer is read from its rows, never assumed from the request.
KNOWN_LENGTHS_MS: dict[int, str] = {
    30 * 60_000: "30m",
    60 * 60_000: "1h",
    4 * 60 * 60_000: "4h",
    24 * 60 * 60_000: "1d",
    4 * 24 * 60 * 60_000: "4d",
}
NOT_PUBLISHED = "not published yet"


def detect_length(rows: Sequence[OhlcRow]) -> str | None:
    """The candle length of an answer: the most common spacing of its close stamps (gaps and a stray row do not
    change it; on a tie the shorter wins). None when fewer than two distinct stamps say nothing about it; a
    spacing that is no CoinGecko length comes back as e.g. "45m"."""
    stamps = sorted({r.close_ms for r in rows})
    spacings = Counter(b - a for a, b in itertools.pairwise(stamps))
    if not spacings:
        return None
    spacing = max(spacings.items(), key=lambda item: (item[1], -item[0]))[0]
    return KNOWN_LENGTHS_MS.get(spacing, f"{spacing / 60_000:g}m")


def can_build(interval: str, source: str) -> bool:
    """True when `interval` candles are `source` candles, or whole groups of them on the same grid."""
    if source not in INTERVAL_SECONDS:
        return False
    length, step = INTERVAL_SECONDS[interval], INTERVAL_SECONDS[source]
    return length >= step and length % step == 0


@dataclass(frozen=True, slots=True)
class MappedAnswer:
    """One `/ohlc` answer mapped to the race's interval: the candles, every row or bucket not used with its
    reason, the length the rows turned out to have, and `problem` when the answer gave nothing usable."""

    candles: list[Candle]
    dropped: list[tuple[str, str]]
    source: str
    problem: str | None


def map_answer(
    symbol: str, parsed: ParsedOhlc, *, expected: str, interval: str, start: datetime, end: datetime
) -> MappedAnswer:
    """`parsed` -> `interval` candles of [start, end], whatever length CoinGecko answered with (`expected`,
    the length `days` should give, only when the rows are too few to tell). An answer that cannot make a
    single candle of the window while CoinGecko is not merely late with the newest one has a `problem`."""
    rows = parsed.rows
    dropped = list(parsed.rejected)
    source = detect_length(rows) or expected
    if not can_build(interval, source):
        in_window = [r for r in rows if start.timestamp() * 1000 < r.close_ms <= end.timestamp() * 1000]  # ms
        reason = f"{source} candles cannot make {interval} candles"
        dropped.extend((_stamp_label(r.close_ms), reason) for r in in_window)
        refusal = f"no usable {interval} candle for {symbol}: CoinGecko answered {source} candles ({len(rows)} rows)"
        return MappedAnswer([], dropped, source, refusal)
    # Rows that close by `start` cannot be part of the window's candles: not used, and not worth a report line.
    start_ms = start.timestamp() * 1000
    mapped = to_candles(
        symbol, [r for r in rows if r.close_ms > start_ms], source=source, interval=interval, start=start, end=end
    )
    dropped.extend(mapped.dropped)
    problem: str | None = None
    if not mapped.candles:
        problem = _why_nothing(symbol, rows, dropped, interval=interval, end=end)
    return MappedAnswer(mapped.candles, dropped, source, problem)


def _why_nothing(
    symbol: str, rows: Sequence[OhlcRow], dropped: Sequence[tuple[str, str]], *, interval: str, end: datetime
) -> str | None:
    """Why an answer made no candle, or None when CoinGecko is only late with the newest one (its cache
    publishes up to ~15 minutes after the close): that candle is stored whole by a later run."""
    head = f"no usable {interval} candle for {symbol}"
    substantive = [reason for _, reason in dropped if NOT_PUBLISHED not in reason]
    if substantive:
        return f"{head}: {len(dropped)} dropped, e.g. {substantive[0]}"
    if not rows:
        return f"{head}: CoinGecko answered no rows"
    newest = datetime.fromtimestamp(max(r.close_ms for r in rows) / 1000, UTC)
    if newest < end - interval_delta(interval):
        return f"{head}: the newest row closes at {newest.isoformat()}, more than {interval} before {end.isoformat()}"
    return None


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
            reason = f"only {len(present)} of its {count} {source} candles (missing or {NOT_PUBLISHED})"
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
