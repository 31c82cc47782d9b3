"""Reads the bundled 2024 hourly candles (`shared/adapters/market_data/candles/*.csv.gz`) for training.

A tiny copy of a CSV reader on purpose: the service must not import the Functions app's adapters. Only the
training command reads these files; the running service gets its candles in each request.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_CANDLES_DIR = Path(__file__).resolve().parent.parent / "shared" / "adapters" / "market_data" / "candles"
COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class CandleSeries:
    """One asset's candles, ascending: open times and (open, high, low, close, volume) rows. Real exchanges
    have maintenance gaps: open times may skip whole intervals, and training never builds a window over one."""

    symbol: str
    interval: timedelta
    open_times: tuple[datetime, ...]
    rows: tuple[tuple[float, float, float, float, float], ...]

    def gaps(self) -> list[tuple[datetime, datetime]]:
        """(last open time before, first open time after) of every gap."""
        return [(a, b) for a, b in itertools.pairwise(self.open_times) if b - a != self.interval]


def load_series(path: Path, interval: timedelta = timedelta(hours=1)) -> CandleSeries:
    symbol = path.name.split("_", 1)[0].upper()
    times: list[datetime] = []
    rows: list[tuple[float, float, float, float, float]] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path.name}: expected columns {COLUMNS}, got {reader.fieldnames}")
        for record in reader:
            times.append(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")))
            rows.append(tuple(float(record[c]) for c in COLUMNS[1:]))  # type: ignore[arg-type]
    for previous, current in itertools.pairwise(times):
        step = current - previous
        if step <= timedelta(0) or step % interval:
            problem = "duplicate or disorder" if step <= timedelta(0) else f"a time off the {interval} grid"
            raise ValueError(f"{path.name}: {problem} between {previous} and {current}")
    return CandleSeries(symbol, interval, tuple(times), tuple(rows))


def load_all(directory: Path = DEFAULT_CANDLES_DIR, interval: str = "1h") -> dict[str, CandleSeries]:
    """Every `<SYMBOL>_<interval>.csv.gz` in the directory, by symbol (sorted, so iteration order is stable)."""
    paths = sorted(directory.glob(f"*_{interval}.csv.gz"))
    if not paths:
        raise FileNotFoundError(f"no *_{interval}.csv.gz candle files in {directory}")
    step = {"30m": timedelta(minutes=30), "1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}
    return {s.symbol: s for s in (load_series(p, step[interval]) for p in paths)}
