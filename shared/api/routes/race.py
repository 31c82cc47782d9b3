from __future__ import annotations

import hashlib

from fastapi import APIRouter

from shared.api.deps import QueriesDep, StatisticsDep
from shared.api.schemas import RacePublic

router = APIRouter(tags=["race"])


@router.get("/race")
def read_race(queries: QueriesDep, statistics: StatisticsDep) -> RacePublic:
    """Cycle count, first and latest cycle, and a `version` that changes when a cycle lands or its statistics
    do: what a live dashboard polls (with If-None-Match: an unchanged race is a bodiless 304) before
    refetching anything else."""
    status = queries.race_status()
    stamp = f"{status.cycles}|{status.last_cycle}|{status.last_finished_at}"
    computed = statistics.stamp() if statistics is not None else None
    if computed is not None:  # the statistics land after the cycle's marks: a second change of version
        stamp += f"|{computed.computed_for}|{computed.computed_at}|{computed.agents}"
    version = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    return RacePublic(
        cycles=status.cycles,
        first_cycle=status.first_cycle,
        last_cycle=status.last_cycle,
        last_finished_at=status.last_finished_at,
        version=version,
    )
