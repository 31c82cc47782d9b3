"""The frozen market view every agent sees in a cycle, and the validation of incoming candles."""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.domain.model import Candle


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Candles per symbol, ascending, each closed at or before `cycle_time` (anti-look-ahead).

    `sha256` fingerprints the exact data, so a decision can be tied to what its model saw.
    """

    cycle_time: datetime
    candles: Mapping[str, tuple[Candle, ...]]
    sha256: str

    @classmethod
    def build(cls, cycle_time: datetime, candles: Mapping[str, Sequence[Candle]]) -> MarketSnapshot:
        frozen: dict[str, tuple[Candle, ...]] = {}
        for symbol in sorted(candles):
            rows = tuple(candles[symbol])
            if not rows:
                continue
            times = [c.open_time for c in rows]
            if not all(map(operator.lt, times, itertools.islice(times, 1, None))):  # strictly ascending already?
                rows = tuple(sorted(rows, key=lambda c: c.open_time))
            # Ascending and one interval per symbol, so the last candle closes last: checking it checks all.
            if len({c.interval for c in rows}) > 1:
                raise ValueError(f"{symbol}: a snapshot mixes candle intervals")
            if rows[-1].close_time > cycle_time:
                raise ValueError(f"look-ahead: {symbol} candle closing {rows[-1].close_time} > {cycle_time}")
            frozen[symbol] = rows
        return cls(cycle_time, frozen, _fingerprint(cycle_time, frozen))

    @property
    def last_prices(self) -> dict[str, Decimal]:
        return {symbol: rows[-1].close for symbol, rows in self.candles.items()}

    @property
    def data_as_of(self) -> datetime | None:
        """Close time of the freshest candle; with `cycle_time`, tells how stale the data is."""
        closes = [rows[-1].close_time for rows in self.candles.values()]
        return max(closes) if closes else None

    def stale_prices(self, max_age: timedelta | None = None) -> dict[str, str]:
        """Symbols whose latest candle closed before the snapshot's freshest one (a gap in that symbol's data,
        or an asset that stopped trading), each with why: their last close is no price to trade at now. When
        every symbol is equally behind (a provider outage, an exchange-wide halt) none is listed, unless its
        last close is older than `max_age` before the cycle (`Race__MaxPriceAgeMinutes`, opt-in): otherwise
        that is the `staleness()` every decision records (README, "Bring your own market data")."""
        as_of = self.data_as_of
        stale: dict[str, str] = {}
        for symbol, rows in self.candles.items():
            closed = rows[-1].close_time
            if as_of is not None and closed < as_of:
                stale[symbol] = (
                    f"no fresh price for {symbol}: its latest candle closed at {closed:%Y-%m-%d %H:%M} UTC, the "
                    f"other assets' at {as_of:%Y-%m-%d %H:%M} UTC (a gap in its data): no trade at a stale price"
                )
            elif max_age is not None and self.cycle_time - closed > max_age:
                stale[symbol] = (
                    f"no fresh price for {symbol}: its latest candle closed at {closed:%Y-%m-%d %H:%M} UTC, more "
                    f"than {max_age.total_seconds() / 60:g} min before the cycle (Race__MaxPriceAgeMinutes)"
                )
        return stale

    def staleness(self) -> timedelta | None:
        as_of = self.data_as_of
        return None if as_of is None else self.cycle_time - as_of


def _fingerprint(cycle_time: datetime, candles: Mapping[str, tuple[Candle, ...]]) -> str:
    """sha256 of a canonical text of all the data (one join, one hash: this runs once per cycle)."""
    parts = [cycle_time.isoformat()]
    append, cached = parts.append, _CANONICAL_TEXT.get
    for symbol, rows in candles.items():
        for candle in rows:  # `_canonical`, with its cache hit inlined: this loop runs for every candle
            entry = cached(id(candle))
            if entry is not None and entry[0] is candle and entry[1] == symbol:
                append(entry[2])
            else:
                append(_canonical(symbol, candle))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# Canonical text per candle object: consecutive cycles see mostly the same (cached, immutable) candles, and
# formatting them again costs more than everything else in the snapshot. Keyed by identity, holding the
# candle so the id cannot be reused while the entry lives; cleared wholesale when it grows too big.
_CANONICAL_TEXT: dict[int, tuple[Candle, str, str]] = {}
_CANONICAL_TEXT_MAX = 100_000


def _canonical(symbol: str, c: Candle) -> str:
    entry = _CANONICAL_TEXT.get(id(c))
    if entry is not None and entry[0] is c and entry[1] == symbol:
        return entry[2]
    text = f"{symbol},{c.interval},{c.open_time.isoformat()},{c.open},{c.high},{c.low},{c.close},{c.volume}"
    if len(_CANONICAL_TEXT) >= _CANONICAL_TEXT_MAX:
        _CANONICAL_TEXT.clear()
    _CANONICAL_TEXT[id(c)] = (c, symbol, text)
    return text


def candle_problem(candle: Candle, now: datetime) -> str | None:
    """Why a candle must not be stored, or None when it is sound."""
    prices = (candle.open, candle.high, candle.low, candle.close)
    if any(not p.is_finite() for p in (*prices, candle.volume)):
        return "non-finite value"
    if any(p <= 0 for p in prices):
        return "zero or negative price"
    if candle.volume < 0:
        return "negative volume"
    if candle.high < max(candle.open, candle.close):
        return "high below max(open, close)"
    if candle.low > min(candle.open, candle.close):
        return "low above min(open, close)"
    if candle.open_time.tzinfo is None:
        return "naive timestamp"
    if candle.close_time > now:
        return "candle not closed yet (future close time)"
    return None


@dataclass(frozen=True, slots=True)
class CandleScreening:
    accepted: tuple[Candle, ...]
    dropped: tuple[tuple[Candle, str], ...]


def screen_candles(candles: Sequence[Candle], now: datetime) -> CandleScreening:
    """Keep sound candles in ascending order; drop (with the reason) bad, duplicate or out-of-order rows."""
    accepted: list[Candle] = []
    dropped: list[tuple[Candle, str]] = []
    last_key: dict[tuple[str, str], datetime] = {}
    for candle in candles:
        problem = candle_problem(candle, now)
        key = (candle.symbol, candle.interval)
        previous = last_key.get(key)
        if problem is None and previous is not None and candle.open_time <= previous:
            problem = "duplicate timestamp" if candle.open_time == previous else "out of order"
        if problem:
            dropped.append((candle, problem))
            continue
        last_key[key] = candle.open_time
        accepted.append(candle)
    return CandleScreening(tuple(accepted), tuple(dropped))
