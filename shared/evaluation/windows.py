"""Disjoint evaluation windows over a range of cycles: calendar months, calendar quarters, or N equal parts.

Pure: no I/O. A window is a half-open range [start, end) of cycle times; the windows of one split are
disjoint, ordered, and cover the range exactly (every cycle of the range is in exactly one window).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHLY = "monthly"
QUARTERLY = "quarterly"
DEFAULT_MIN_CYCLES = 24


class WindowError(ValueError):
    """The windows cannot be made as asked (a bad spec, or a window shorter than a race needs)."""


@dataclass(frozen=True, slots=True)
class Window:
    """One evaluation window: cycles start, start + cycle, ... strictly before end."""

    index: int
    label: str
    start: datetime
    end: datetime

    def cycles(self, cycle: timedelta) -> int:
        return -((self.start - self.end) // cycle)


def parse_windows_spec(text: str) -> str | int:
    """`monthly`, `quarterly`, or a positive number of equal windows; WindowError otherwise."""
    value = text.strip().lower()
    if value in (MONTHLY, QUARTERLY):
        return value
    try:
        count = int(value)
    except ValueError:
        raise WindowError(f"--windows must be monthly, quarterly or a number of windows, got {text!r}") from None
    if count < 1:
        raise WindowError(f"--windows must be at least 1, got {count}")
    return count


def split_windows(
    start: datetime, end: datetime, spec: str | int, *, cycle: timedelta, min_cycles: int = DEFAULT_MIN_CYCLES
) -> list[Window]:
    """The windows of [start, end) for `spec`. Month and quarter boundaries are UTC calendar boundaries (the
    first and last window are cut to the range); N splits the range's cycles into N runs whose lengths differ by at
    most one cycle. WindowError when a window would hold fewer than
    `min_cycles` cycles, naming it, or for a range that holds no cycle."""
    if start.tzinfo is None or end.tzinfo is None:
        raise WindowError("naive start or end: evaluation times are UTC-aware")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise WindowError(f"the evaluation range is empty: {start.isoformat()} .. {end.isoformat()}")
    total = -((start - end) // cycle)
    if isinstance(spec, int):
        if spec < 1:
            raise WindowError(f"--windows must be at least 1, got {spec}")
        bounds = [start + ((total * i) // spec) * cycle for i in range(spec)] + [start + total * cycle]
        windows = [
            Window(i, f"{i + 1}/{spec}", lo, min(hi, end)) for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
        ]
    elif spec in (MONTHLY, QUARTERLY):
        months = 1 if spec == MONTHLY else 3
        windows = []
        lo = start
        while lo < end:
            hi = min(_next_boundary(lo, months), end)
            windows.append(Window(len(windows), _label(lo, spec), lo, hi))
            lo = hi
    else:
        raise WindowError(f"unknown windows spec {spec!r}")
    for window in windows:
        count = window.cycles(cycle) if window.end > window.start else 0
        if count < min_cycles:
            raise WindowError(
                f"window {window.label} ({window.start:%Y-%m-%d %H:%M} .. {window.end:%Y-%m-%d %H:%M} UTC) holds "
                f"{count} cycles, fewer than the {min_cycles} a window needs: use fewer or longer windows "
                f"(or --min-cycles)"
            )
    return windows


def _next_boundary(moment: datetime, months: int) -> datetime:
    """The first calendar boundary (month, or quarter when months == 3) strictly after `moment`."""
    first_month = ((moment.month - 1) // months) * months  # 0-based month the period starts in
    year, month = divmod(first_month + months, 12)
    return datetime(moment.year + year, month + 1, 1, tzinfo=UTC)


def _label(moment: datetime, spec: str) -> str:
    if spec == MONTHLY:
        return f"{moment:%Y-%m}"
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
