"""Every agent's equity curve in one answer: what the race page's all-agents chart draws. One request instead
of one per agent (20 agents: 20 round trips, 20 ETags and JSON documents), no wait for the agent list, and
only the two columns the chart needs. The curves change only when the race version moves (a cycle or a
mark), so the encoded answer is kept per version: every viewer after the first gets it without 20 queries
and the encoding of ~10,000 points."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from shared.api.contract import SETTING
from shared.api.deps import EndQuery, QueriesDep, SettingsDep, StartQuery, ensure_time_range
from shared.api.errors import InvalidRequestError
from shared.api.routes.race import version_of
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


CACHED_ANSWERS = 8  # ranges kept per process (the dashboard asks for five)
_CacheKey = tuple[str, tuple[int, ...], datetime | None, datetime | None, int]


class _Answers:
    """Encoded answers by (race version, agents, range, points); the oldest go first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.encoded: OrderedDict[_CacheKey, bytes] = OrderedDict()

    def get(self, key: _CacheKey) -> bytes | None:
        with self.lock:
            return self.encoded.get(key)

    def put(self, key: _CacheKey, body: bytes) -> None:
        with self.lock:
            self.encoded[key] = body
            while len(self.encoded) > CACHED_ANSWERS:
                self.encoded.popitem(last=False)


def _answers_of(request: Request) -> _Answers:
    answers = getattr(request.app.state, "equity_curves_answers", None)
    if answers is None:
        answers = request.app.state.equity_curves_answers = _Answers()
    return answers


@router.get("/equity", response_model=EquityCurvesPublic)
async def read_equity_curves(
    queries: QueriesDep,
    settings: SettingsDep,
    request: Request,
    start: StartQuery = None,
    end: EndQuery = None,
    max_points: MaxPointsQuery = None,
) -> Response:
    """Every agent's equity curve (active or not, by agent id), oldest point first, each downsampled to
    `max_points` as `/agents/{id}/equity` does (the same points, `at` and `equity` only, in columns). An agent
    with no mark yet has an empty curve."""
    ensure_time_range(start, end)
    limit = settings.api.max_equity_points
    if max_points is not None and max_points > limit:
        raise InvalidRequestError(f"query.max_points: must be at most {limit}, got {max_points}")
    points = max_points or limit

    answers = _answers_of(request)

    def read() -> bytes:
        version = version_of(queries.race_status())
        agents = tuple(sorted(s.agent.id for s in queries.agent_summaries(starting_cash=settings.race.starting_cash)))
        key = (version, agents, start, end, points)
        if (cached := answers.get(key)) is not None:
            return cached
        curves = []
        for agent_id in agents:
            series = queries.equity_series(agent_id, start=start, end=end, max_points=points)[:points]
            curves.append({"agent_id": agent_id, "at": [p.at for p in series], "equity": [p.equity for p in series]})
        # One validation of everything in pydantic's core, not one Python call per point.
        body = {"start": start, "end": end, "max_points": points, "curves": curves}
        encoded = EquityCurvesPublic.model_validate(body, from_attributes=True).model_dump_json().encode()
        answers.put(key, encoded)
        return encoded

    return Response(await run_in_threadpool(read), media_type="application/json")
