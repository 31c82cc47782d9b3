"""Use case: the time a job triggered by hand runs at, on the race's own clock.

A replay race's clock is the cycle after its latest recorded one (the local runner's simulated clock lives in
the database); a live race's clock is the wall clock. A job may run only at a time the race can honestly
decide at: never ahead of the race's clock or of its data (that would decide, mark or ingest the future and
make the timers skip it), never before the latest recorded cycle (that would trade today's portfolio at an
old snapshot's prices, or mark it at a time it did not exist). Anything else is refused before a row is
written, with the reason and the time the job would run at by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.domain.cycles import floor_time
from shared.domain.model import interval_delta
from shared.services.ports import UnitOfWorkFactory

Job = Literal["market-data", "run-agents", "equity-snapshot"]


class JobTimeRefused(Exception):
    """A job time the race cannot honestly run at; the message says why and what the race's clock says."""


@dataclass(frozen=True, slots=True)
class RaceClock:
    """Where a race stands: `replay` races run on their recorded cycles, live ones on `wall_clock`."""

    replay: bool
    cycle: timedelta
    replay_start: datetime
    interval: str
    wall_clock: Callable[[], datetime]


def admin_job_time(
    *, uow_factory: UnitOfWorkFactory, clock: RaceClock, job: Job, requested: datetime | None
) -> datetime:
    """The time `job` runs at: `requested` when the race can run it then, else the race's next due time for the
    job (market-data and run-agents: the due cycle; equity-snapshot: the latest recorded cycle, since marks
    follow the cycles). For run-agents the result is the cycle time. Raises `JobTimeRefused`."""
    with uow_factory() as uow:
        latest_cycle = uow.cycles.latest_time()
        symbols = [asset.symbol for asset in uow.assets.list(active_only=True)]
        opens = [t for t in uow.candles.latest_open_times(symbols, clock.interval).values() if t is not None]
    data_until = max(opens) + interval_delta(clock.interval) if opens else None
    if clock.replay:
        due = latest_cycle + clock.cycle if latest_cycle is not None else floor_time(clock.replay_start, clock.cycle)
        now = due
    else:
        now = clock.wall_clock()
        due = floor_time(now, clock.cycle)
    earliest = latest_cycle if latest_cycle is not None else due

    if job == "equity-snapshot":
        if latest_cycle is None:
            raise JobTimeRefused("nothing to mark yet: no cycle has run (equity marks follow the cycles)")
        at = latest_cycle if requested is None else floor_time(requested, clock.cycle)
        if at > latest_cycle:
            raise JobTimeRefused(
                f"at {at.isoformat()} is after the latest recorded cycle ({latest_cycle.isoformat()}): equity marks "
                "follow the cycles; run that cycle first (default: the latest cycle)"
            )
        return _not_before(at, earliest)
    if job == "market-data":
        at = due if requested is None else requested
        if at > now:
            raise JobTimeRefused(
                f"at {at.isoformat()} is ahead of the race's clock ({now.isoformat()}): candles that have not "
                f"closed by then cannot be ingested (default: {due.isoformat()})"
            )
        return _not_before(at, earliest)
    cycle_time = due if requested is None else floor_time(requested, clock.cycle)
    if cycle_time > due:
        raise JobTimeRefused(
            f"cycle {cycle_time.isoformat()} is ahead of the race's clock: the next due cycle is {due.isoformat()}"
        )
    _not_before(cycle_time, earliest)
    if data_until is None or data_until < cycle_time:
        closed = data_until.isoformat() if data_until is not None else "none stored"
        raise JobTimeRefused(
            f"cycle {cycle_time.isoformat()} is ahead of the race's data (latest candle close: {closed}): "
            "run market-data for it first"
        )
    return cycle_time


def _not_before(at: datetime, earliest: datetime) -> datetime:
    if at < earliest:
        raise JobTimeRefused(
            f"at {at.isoformat()} is before the race's latest recorded cycle ({earliest.isoformat()}): the race "
            "has moved past it, and running it now would decide or mark today's portfolio at an old time"
        )
    return at
