"""Every agent's equity curve in one answer: what the race page's all-agents chart draws. One request instead
of one per agent (20 agents: 20 round trips, 20 ETags and JSON documents), no wait for the agent list, and
only the two columns the chart needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from shared.api.contract import SETTING
from shared.api.deps import EndQuery, QueriesDep, SettingsDep, StartQuery, ensure_time_range
from shared.api.errors import InvalidRequestError
from shared.api.schemas import EquityCurvesPublic

router = APIRouter(tags=["agents"])

MaxPointsQuery = Annotated[
    int | None,
    Query(
        ge=2,
        description="Downsample each curve to at most this many points (<= Api__MaxEquityPoints).",
        json_schema_extra={SETTING: "max_equity_points"},
    ),
]


@router.get("/equity")
async def read_equity_curves(
    queries: QueriesDep,
    settings: SettingsDep,
    start: StartQuery = None,
    end: EndQuery = None,
    max_points: MaxPointsQuery = None,
) -> EquityCurvesPublic:
    """Every agent's equity curve (active or not, by agent id), oldest point first, each downsampled to
    `max_points` as `/agents/{id}/equity` does (the same points, `at` and `equity` only, in columns). An agent
    with no mark yet has an empty curve."""
    ensure_time_range(start, end)
    limit = settings.api.max_equity_points
    if max_points is not None and max_points > limit:
        raise InvalidRequestError(f"query.max_points: must be at most {limit}, got {max_points}")
    points = max_points or limit

    def read() -> EquityCurvesPublic:
        agents = sorted(s.agent.id for s in queries.agent_summaries(starting_cash=settings.race.starting_cash))
        curves = []
        for agent_id in agents:
            series = queries.equity_series(agent_id, start=start, end=end, max_points=points)[:points]
            curves.append({"agent_id": agent_id, "at": [p.at for p in series], "equity": [p.equity for p in series]})
        # One validation of everything in pydantic's core, not one Python call per point.
        body = {"start": start, "end": end, "max_points": points, "curves": curves}
        return EquityCurvesPublic.model_validate(body, from_attributes=True)

    return await run_in_threadpool(read)
