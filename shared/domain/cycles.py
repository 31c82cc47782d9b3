"""Cycle identity: a cycle is named by its scheduled UTC time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_time(moment: datetime, step: timedelta) -> datetime:
    """`moment` floored to a multiple of `step` since the Unix epoch, in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: cycle times are always UTC-aware")
    moment = moment.astimezone(UTC)
    return EPOCH + ((moment - EPOCH) // step) * step
