"""Bring your own market data: the replay provider on a directory of `{SYMBOL}_{interval}.csv[.gz]` files.

`MarketData__ReplayDir` points the offline replay at such a directory instead of the bundled 2024 set. Every
file is read and checked when the provider is built, before anything is stored: a bad file stops the race with
its path and line, and nothing of any file reaches the database. The format (README, "Bring your own market
data"): header `timestamp,open,high,low,close,volume`; `timestamp` is the candle's **open** time in UTC, either
ISO 8601 with an offset (`2020-12-21T14:00:00Z`, `+00:00`) or a Unix epoch integer in seconds (10 digits) or
milliseconds (13 digits); one row per candle, strictly ascending, on the interval's grid.

Each row passes the same soundness check as live candles (`candle_problem`: finite, positive prices, high and low
around open and close, volume not negative); here a failure is an error of the file, not a dropped row, because
a file is edited by a person who can fix it. Missing candles (an exchange's maintenance) and zero-volume bars
are facts of the data: they are kept as they are, counted and reported with their ranges (`data_quality`), and
never filled in.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shared.adapters.market_data.replay import EXPECTED_HEADER, ReplayDataError, ReplayMarketDataProvider, _Series
from shared.domain.cycles import floor_time
from shared.domain.model import INTERVAL_SECONDS, Candle, interval_delta
from shared.domain.snapshot import candle_problem

_FILE_NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9]{1,20})_(?P<interval>[A-Za-z0-9]+)\.csv(?P<gz>\.gz)?$")
# Far beyond any candle: the file check is about the row itself; ingest still refuses candles not closed yet.
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)
_EPOCH_MS_FROM = 10**11  # an integer this big is milliseconds (10**11 s would be the year 5138)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A run of consecutive open times (inclusive) and how many candles it spans."""

    first: datetime
    last: datetime
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "candles": self.count}

    def __str__(self) -> str:
        span = f"{self.first:%Y-%m-%d %H:%M}" + (f"..{self.last:%Y-%m-%d %H:%M}" if self.count > 1 else "")
        return f"{span} ({self.count})"


@dataclass(frozen=True, slots=True)
class SeriesQuality:
    """One file's coverage: its candles, first and last open time, missing candles and zero-volume bars."""

    symbol: str
    path: Path
    candles: int
    first: datetime
    last: datetime
    gaps: tuple[TimeRange, ...]
    zero_volume: tuple[TimeRange, ...]

    @property
    def missing(self) -> int:
        return sum(gap.count for gap in self.gaps)

    @property
    def zero_volume_bars(self) -> int:
        return sum(run.count for run in self.zero_volume)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "file": self.path.name,
            "candles": self.candles,
            "first_open": self.first.isoformat(),
            "last_open": self.last.isoformat(),
            "missing_candles": self.missing,
            "gaps": [gap.as_dict() for gap in self.gaps],
            "zero_volume_bars": self.zero_volume_bars,
            "zero_volume": [run.as_dict() for run in self.zero_volume],
        }

    def summary(self) -> str:
        gaps = ", ".join(map(str, self.gaps)) or "none"
        zero = ", ".join(map(str, self.zero_volume)) or "none"
        return (
            f"{self.symbol}: {self.candles} candles {self.first:%Y-%m-%d %H:%M}..{self.last:%Y-%m-%d %H:%M} UTC; "
            f"missing {self.missing} in {len(self.gaps)} gaps: {gaps}; zero-volume bars {self.zero_volume_bars}: {zero}"
        )


def parse_timestamp(text: str) -> datetime:
    """An open time: ISO 8601 with a UTC offset, or Unix epoch seconds / milliseconds. ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        seconds = value / 1000 if value >= _EPOCH_MS_FROM else value
        return datetime.fromtimestamp(seconds, UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("timestamp without a UTC offset (write 2020-12-21T14:00:00Z, or epoch seconds)")
    return moment.astimezone(UTC)


def scan_directory(directory: Path, interval: str) -> dict[str, Path]:
    """The candle file of each symbol for `interval`: SYMBOL -> path. ReplayDataError for a missing or empty
    directory, a file name that is not `{SYMBOL}_{interval}.csv[.gz]`, an unknown interval, or a symbol with
    both a .csv and a .csv.gz. Files of another known interval are left alone; non-CSV files (a README) too."""
    if not directory.is_dir():
        raise ReplayDataError(f"MarketData__ReplayDir {directory} is not a directory")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not (path.name.endswith(".csv") or path.name.endswith(".csv.gz")):
            continue
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ReplayDataError(f"{path}: expected a file name like BTC_{interval}.csv or BTC_{interval}.csv.gz")
        if match["interval"] not in INTERVAL_SECONDS:
            raise ReplayDataError(
                f"{path}: unknown interval {match['interval']!r} in the file name; "
                f"use one of {sorted(INTERVAL_SECONDS)}"
            )
        if match["interval"] != interval:
            continue
        symbol = match["symbol"].upper()
        if symbol in found:
            raise ReplayDataError(f"{path}: {symbol} has two files ({found[symbol].name} and {path.name}); keep one")
        found[symbol] = path
    if not found:
        raise ReplayDataError(
            f"MarketData__ReplayDir {directory} has no {{SYMBOL}}_{interval}.csv or .csv.gz file "
            f"(MarketData__Interval={interval})"
        )
    return found


def read_candle_csv(path: Path, symbol: str, interval: str) -> list[Candle]:
    """Every candle of one file, checked row by row; ReplayDataError names the file and line of the first
    problem (bad header, field count, timestamp or number, an unsound candle, a time off the interval's grid,
    a duplicate or an out-of-order time, no rows at all)."""
    step = interval_delta(interval)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is harmless
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ReplayDataError(
            f"{path}: cannot be read as {'gzip ' if path.name.endswith('.gz') else ''}UTF-8 CSV: {exc}"
        ) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or [name.strip().lower() for name in header] != EXPECTED_HEADER:
        raise ReplayDataError(f"{path}:1: expected the header {','.join(EXPECTED_HEADER)}, got {header}")
    candles: list[Candle] = []
    for line, row in enumerate(rows, start=2):
        if not row or not any(field.strip() for field in row):
            continue  # blank lines (a trailing newline) carry nothing
        candle = _candle(path, line, row, symbol, interval, step)
        if candles and candle.open_time <= candles[-1].open_time:
            problem = "duplicate timestamp" if candle.open_time == candles[-1].open_time else "timestamp out of order"
            raise _row_error(
                path, line, row, f"{problem} (the previous row opens at {candles[-1].open_time:%Y-%m-%d %H:%M} UTC)"
            )
        candles.append(candle)
    if not candles:
        raise ReplayDataError(f"{path}: no candles after the header")
    return candles


def _candle(path: Path, line: int, row: list[str], symbol: str, interval: str, step: timedelta) -> Candle:
    if len(row) != len(EXPECTED_HEADER):
        raise _row_error(path, line, row, f"expected {len(EXPECTED_HEADER)} fields, got {len(row)}")
    try:
        open_time = parse_timestamp(row[0])
    except (ValueError, OverflowError, OSError) as exc:
        raise _row_error(path, line, row, f"bad timestamp ({exc})") from None
    if floor_time(open_time, step) != open_time:
        raise _row_error(path, line, row, f"open time {open_time.isoformat()} is not on the {interval} grid")
    try:
        open_, high, low, close, volume = (Decimal(field.strip()) for field in row[1:])
    except InvalidOperation:
        raise _row_error(path, line, row, "not a number") from None
    candle = Candle(symbol, interval, open_time, open_, high, low, close, volume)
    problem = candle_problem(candle, _END_OF_TIME)  # the live data's check (high < low fails it too)
    if problem is not None:
        raise _row_error(path, line, row, problem)
    return candle


def _row_error(path: Path, line: int, row: list[str], problem: str) -> ReplayDataError:
    return ReplayDataError(f"{path}:{line}: {problem}: {','.join(row)!r}")


def series_quality(symbol: str, path: Path, candles: Sequence[Candle], step: timedelta) -> SeriesQuality:
    """Gaps (runs of missing open times between the first and last candle) and runs of zero-volume bars."""
    gaps = [
        TimeRange(before.open_time + step, after.open_time - step, (after.open_time - before.open_time) // step - 1)
        for before, after in itertools.pairwise(candles)
        if after.open_time - before.open_time > step
    ]
    zero: list[TimeRange] = []
    for candle in candles:
        if candle.volume != 0:
            continue
        last = zero[-1] if zero else None
        if last is not None and candle.open_time - last.last == step:
            zero[-1] = TimeRange(last.first, candle.open_time, last.count + 1)
        else:
            zero.append(TimeRange(candle.open_time, candle.open_time, 1))
    return SeriesQuality(
        symbol, path, len(candles), candles[0].open_time, candles[-1].open_time, tuple(gaps), tuple(zero)
    )


class DirectoryReplayProvider(ReplayMarketDataProvider):
    """The replay provider on a user's directory: every file read and checked up front (see the module
    docstring), so a bad file fails the start, never halfway through a race. `symbols` limits the race to
    some of the files (ReplayDataError for a symbol without one)."""

    name = "replay"

    def __init__(self, directory: Path, *, interval: str = "1h", symbols: Iterable[str] | None = None) -> None:
        super().__init__(directory, interval=interval)
        files = scan_directory(directory, interval)
        chosen = sorted(files) if symbols is None else sorted(dict.fromkeys(s.strip().upper() for s in symbols))
        unknown = [symbol for symbol in chosen if symbol not in files]
        if unknown or not chosen:
            raise ReplayDataError(
                f"MarketData__ReplayAssets: no {interval} file for {', '.join(unknown) or 'any asset'} in "
                f"{directory} (files for: {', '.join(sorted(files))})"
            )
        self.files = {symbol: files[symbol] for symbol in chosen}
        self.quality: dict[str, SeriesQuality] = {}
        for symbol, path in self.files.items():
            candles = read_candle_csv(path, symbol, interval)
            self._series[symbol] = _Series(candles)
            self.quality[symbol] = series_quality(symbol, path, candles, self._step)

    def path_for(self, symbol: str) -> Path:
        return self.files.get(symbol.upper(), self.directory / f"{symbol.upper()}_{self.interval}.csv")

    def available_symbols(self) -> list[str]:
        return sorted(self.files)

    def data_quality(self) -> dict[str, Any]:
        """What `/api/health` and the run's output report: per symbol, its coverage, gaps and zero-volume bars."""
        return {
            "directory": str(self.directory),
            "interval": self.interval,
            "missing_candles": sum(q.missing for q in self.quality.values()),
            "zero_volume_bars": sum(q.zero_volume_bars for q in self.quality.values()),
            "symbols": [self.quality[symbol].as_dict() for symbol in sorted(self.quality)],
        }

    def quality_lines(self) -> list[str]:
        """The data-quality report as console lines: one for the directory, one per symbol."""
        totals = self.data_quality()
        head = (
            f"Market data from {self.directory} ({self.interval}): {len(self.files)} assets, "
            f"{totals['missing_candles']} missing candles, {totals['zero_volume_bars']} zero-volume bars "
            "(kept as they are, never filled in)"
        )
        return [head, *(f"  {self.quality[symbol].summary()}" for symbol in sorted(self.quality))]


def chosen_symbols(replay_assets: str) -> list[str] | None:
    """`MarketData__ReplayAssets` ("BTC,ETH") as symbols; None (every file) when it is empty."""
    symbols = [part.strip().upper() for part in replay_assets.split(",") if part.strip()]
    return symbols or None
