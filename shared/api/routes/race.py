from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from shared.api.deps import QueriesDep, StatisticsDep
from shared.api.schemas import RacePublic
from shared.services.ports import RaceQueries, RaceStatus
from shared.services.statistics_ports import StatisticsRepository, StatisticsStamp

router = APIRouter(tags=["race"])

MAX_WAIT_S = 30
RECHECK_S = 1.0
"""While a client waits, the race's status is read at most once a second per process, shared by every waiter."""

_clock = time.monotonic

WaitQuery = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description="Long poll: hold the answer up to this many seconds while the version is still `since`.",
    ),
]
SinceQuery = Annotated[
    str | None,
    Query(
        pattern="^[0-9a-f]{16}$", description="The version the client has (with `wait`): answer as soon as it moves."
    ),
]


@dataclass
class _StatusMemo:
    """The latest race status, read at most once every RECHECK_S by whichever waiter comes first."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    read_at: float = float("-inf")
    status: RaceStatus | None = None
    version: str = ""

    def get(
        self, queries: RaceQueries, statistics: StatisticsRepository | None, *, fresh: bool
    ) -> tuple[RaceStatus, str]:
        with self.lock:
            if fresh or self.status is None or _clock() - self.read_at >= RECHECK_S:
                self.status = queries.race_status()
                self.version = race_version(self.status, statistics.stamp() if statistics is not None else None)
                self.read_at = _clock()
            return self.status, self.version


def _memo_of(request: Request) -> _StatusMemo:
    memo = getattr(request.app.state, "race_status_memo", None)
    if memo is None:
        memo = request.app.state.race_status_memo = _StatusMemo()
    return memo


def version_of(status: RaceStatus) -> str:
    """What the race's rows are at: moves when a cycle lands or portfolios are marked."""
    stamp = f"{status.cycles}|{status.last_cycle}|{status.last_finished_at}|{status.last_mark_at}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def race_version(status: RaceStatus, computed: StatisticsStamp | None) -> str:
    """The race's public version: its rows' version, and the statistics set stored after the cycle's marks (a
    second change of version, so a leaderboard fetched between the two is refetched with its figures)."""
    if computed is None:
        return version_of(status)
    stamp = f"{version_of(status)}|{computed.computed_for}|{computed.computed_at}|{computed.agents}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


@router.get("/race")
async def read_race(
    queries: QueriesDep, statistics: StatisticsDep, request: Request, wait: WaitQuery = 0, since: SinceQuery = None
) -> RacePublic:
    """Cycle count, first and latest cycle, and a `version` that changes when a cycle lands, portfolios are
    marked or the race's statistics are stored: what a live dashboard watches before refetching anything else.
    With `wait` and `since` the answer is held (long poll) until the version moves or `wait` seconds pass, so an
    idle dashboard makes one request every `wait` seconds (a bodiless 304 with If-None-Match) yet sees a new
    cycle within a second."""
    memo = _memo_of(request)
    status, version = await run_in_threadpool(memo.get, queries, statistics, fresh=since is None)
    deadline = _clock() + wait
    while since is not None and version == since and _clock() < deadline:
        await asyncio.sleep(min(RECHECK_S, max(0.0, deadline - _clock())))
        status, version = await run_in_threadpool(memo.get, queries, statistics, fresh=False)
    return RacePublic(
        cycles=status.cycles,
        first_cycle=status.first_cycle,
        last_cycle=status.last_cycle,
        last_finished_at=status.last_finished_at,
        version=version,
    )
