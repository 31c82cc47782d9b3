"""`ReplayMarketDataProvider`: real 2024 hourly candles bundled with the app, so the race runs offline.

Files are `candles/{SYMBOL}_{interval}.csv.gz` (see candles/README.md), read lazily on first use of a symbol and
kept in memory; prices are parsed from text straight to Decimal, never through float.
"""

from __future__ import annotations

import csv
import gzip
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from shared.domain.model import Asset, Candle, interval_delta

BUNDLED_CANDLES_DIR = Path(__file__).resolve().parent / "candles"
EXPECTED_HEADER = ["timestamp", "open", "high", "low", "close", "volume"]


class ReplayDataError(ValueError):
    """A bundled candle file is malformed; the message names the file and line."""


class _Series:
    """One symbol's candles, ascending, with their open times alongside for bisection."""

    __slots__ = ("candles", "open_times")

    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles
        self.open_times = [c.open_time for c in candles]


class ReplayMarketDataProvider:
    """Serves bundled candles for any [start, end] window; a symbol without a file simply has no candles."""

    name = "replay"

    def __init__(self, directory: Path = BUNDLED_CANDLES_DIR, *, interval: str = "1h") -> None:
        self.directory = directory
        self.interval = interval
        self._step = interval_delta(interval)
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def path_for(self, symbol: str) -> Path:
        return self.directory / f"{symbol.upper()}_{self.interval}.csv.gz"

    def available_symbols(self) -> list[str]:
        suffix = f"_{self.interval}.csv.gz"
        return sorted(p.name.removesuffix(suffix) for p in self.directory.glob(f"*{suffix}"))

    def coverage(self, symbol: str) -> tuple[datetime, datetime] | None:
        """Open times of the first and last bundled candle of `symbol`, or None without data."""
        series = self._load(symbol)
        return (series.open_times[0], series.open_times[-1]) if series.open_times else None

    def fetch_candles(self, assets: Sequence[Asset], *, start: datetime, end: datetime) -> list[Candle]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive start/end: replay windows are UTC-aware")
        # close_time <= end  <=>  open_time <= end - interval: only candles closed by `end` come back.
        last_open = end - self._step
        result: list[Candle] = []
        for asset in assets:
            series = self._load(asset.symbol)
            lo = bisect_left(series.open_times, start)
            hi = bisect_right(series.open_times, last_open)
            result.extend(series.candles[lo:hi])
        return result

    def _load(self, symbol: str) -> _Series:
        key = symbol.upper()
        series = self._series.get(key)
        if series is None:
            with self._lock:  # concurrent first uses parse the file once
                series = self._series.get(key)
                if series is None:
                    path = self.path_for(key)
                    series = _Series(read_candle_file(path, key, self.interval) if path.is_file() else [])
                    self._series[key] = series
        return series


def read_candle_file(path: Path, symbol: str, interval: str) -> list[Candle]:
    """Parse one gzip CSV; ReplayDataError names the file and line of the first malformed row."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header != EXPECTED_HEADER:
            raise ReplayDataError(f"{path}:1: expected header {','.join(EXPECTED_HEADER)}, got {header}")
        candles: list[Candle] = []
        for line_number, row in enumerate(rows, start=2):
            if not row:
                continue  # a trailing blank line is harmless
            candle = _parse_row(path, line_number, row, symbol, interval)
            if candles and candle.open_time <= candles[-1].open_time:
                raise ReplayDataError(f"{path}:{line_number}: timestamp {row[0]} is not after the previous row")
            candles.append(candle)
    return candles


def _parse_row(path: Path, line_number: int, row: list[str], symbol: str, interval: str) -> Candle:
    # Runs for every bundled row (tens of thousands on first use): the happy path does no extra work, and
    # the checks that build messages run only once something is wrong.
    if len(row) != len(EXPECTED_HEADER):
        raise _row_error(path, line_number, row, f"expected {len(EXPECTED_HEADER)} fields, got {len(row)}")
    try:
        open_time = datetime.fromisoformat(row[0])
    except ValueError:
        raise _row_error(path, line_number, row, "bad timestamp") from None
    if open_time.tzinfo is None:
        raise _row_error(path, line_number, row, "timestamp without a UTC offset")
    try:
        open_, high, low, close, volume = map(Decimal, row[1:])
    except InvalidOperation:
        raise _row_error(path, line_number, row, "bad number") from None
    if not (open_.is_finite() and high.is_finite() and low.is_finite() and close.is_finite() and volume.is_finite()):
        raise _row_error(path, line_number, row, "non-finite number")
    if open_time.tzinfo is not UTC:
        open_time = open_time.astimezone(UTC)
    return Candle(symbol, interval, open_time, open_, high, low, close, volume)


def _row_error(path: Path, line_number: int, row: list[str], problem: str) -> ReplayDataError:
    return ReplayDataError(f"{path}:{line_number}: {problem}: {','.join(row)!r}")
