"""What each timer trigger does, kept out of `function_app.py` so tests call it with a fake timer.

Each handler computes `now` in UTC, runs ONE container job and logs its report. Running one twice for the
same time changes nothing (the services are idempotent), so the host's at-least-once timers are safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.correlation import correlated

if TYPE_CHECKING:
    from shared.bootstrap import Container

logger = logging.getLogger(__name__)


class TimerInfo(Protocol):
    """The part of `azure.functions.TimerRequest` the handlers read."""

    @property
    def past_due(self) -> bool: ...


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _note_past_due(job: str, timer: TimerInfo, now: datetime) -> None:
    # Past due means the host was down or busy at the scheduled time; the job still runs for "now".
    if timer.past_due:
        logger.warning("%s timer is past due; running it now (%s)", job, now.isoformat())


def _log_report(job: str, report: dict[str, Any]) -> dict[str, Any]:
    logger.info("%s finished: %s", job, report, extra={"job": job, "report": report})
    return report


def handle_market_data_timer(timer: TimerInfo, container: Container, *, clock: Clock = utc_now) -> dict[str, Any]:
    now = clock()
    _note_past_due("market-data", timer, now)
    return _log_report("market-data", container.run_market_data_job(now).as_dict())


async def handle_run_agents_timer(timer: TimerInfo, container: Container, *, clock: Clock = utc_now) -> dict[str, Any]:
    now = clock()
    _note_past_due("run-agents", timer, now)
    # The cycle is named by its scheduled time, so a late or repeated firing lands on the same cycle.
    cycle_time = container.cycle_time(now)
    with correlated(cycle_id=cycle_time.isoformat()):
        return _log_report("run-agents", (await container.run_agents_job_async(cycle_time)).as_dict())


def handle_equity_snapshot_timer(timer: TimerInfo, container: Container, *, clock: Clock = utc_now) -> dict[str, Any]:
    now = clock()
    _note_past_due("equity-snapshot", timer, now)
    # Marked at the cycle the firing belongs to, so a re-fire or a late firing writes nothing new.
    return _log_report("equity-snapshot", container.run_equity_job(container.cycle_time(now)).as_dict())
