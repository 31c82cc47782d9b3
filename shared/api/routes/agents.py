from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query

from shared.api.contract import SETTING
from shared.api.deps import EndQuery, PageDep, QueriesDep, SettingsDep, StartQuery, ensure_time_range
from shared.api.errors import InvalidRequestError, NotFoundError
from shared.api.schemas import (
    AgentPublic,
    AgentsPublic,
    DecisionPublic,
    DecisionsPagePublic,
    EquitySeriesPublic,
    ErrorPublic,
    TradePublic,
    TradesPagePublic,
)
from shared.services.ports import RaceQueries

router = APIRouter(prefix="/agents", tags=["agents"])

# Bounded to a SQL INTEGER so an absurd id is a 422 here instead of an overflow in the database driver.
AgentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The agent's numeric id.")]


def ensure_agent_exists(queries: RaceQueries, agent_id: int, *, starting_cash: Decimal) -> None:
    # Only called when a history came back empty, so the common case costs one query, not two.
    if queries.agent_summary(agent_id, starting_cash=starting_cash) is None:
        raise NotFoundError(f"agent {agent_id} not found")


@router.get("")
def read_agents(queries: QueriesDep, settings: SettingsDep) -> AgentsPublic:
    """Every agent, active or not, with its cash, latest equity and totals."""
    summaries = queries.agent_summaries(starting_cash=settings.race.starting_cash)
    return AgentsPublic(items=[AgentPublic.from_summary(s) for s in summaries], total=len(summaries))


@router.get("/{agent_id}", responses={404: {"model": ErrorPublic, "description": "Unknown agent."}})
def read_agent(agent_id: AgentId, queries: QueriesDep, settings: SettingsDep) -> AgentPublic:
    summary = queries.agent_summary(agent_id, starting_cash=settings.race.starting_cash)
    if summary is None:
        raise NotFoundError(f"agent {agent_id} not found")
    return AgentPublic.from_summary(summary)


@router.get("/{agent_id}/equity", responses={404: {"model": ErrorPublic, "description": "Unknown agent."}})
def read_agent_equity(
    agent_id: AgentId,
    queries: QueriesDep,
    settings: SettingsDep,
    start: StartQuery = None,
    end: EndQuery = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=2,
            description="Downsample to at most this many points (<= Api__MaxEquityPoints).",
            json_schema_extra={SETTING: "max_equity_points"},
        ),
    ] = None,
) -> EquitySeriesPublic:
    """The equity curve, oldest first, downsampled to `max_points`."""
    ensure_time_range(start, end)
    limit = settings.api.max_equity_points
    if max_points is not None and max_points > limit:
        raise InvalidRequestError(f"query.max_points: must be at most {limit}, got {max_points}")
    max_points = max_points or limit
    points = queries.equity_series(agent_id, start=start, end=end, max_points=max_points)
    if not points:
        ensure_agent_exists(queries, agent_id, starting_cash=settings.race.starting_cash)
    # One validation of the whole list in pydantic's core, not one Python call per point (500 of them).
    series = {"agent_id": agent_id, "start": start, "end": end, "max_points": max_points, "points": points[:max_points]}
    return EquitySeriesPublic.model_validate(series, from_attributes=True)


@router.get("/{agent_id}/trades", responses={404: {"model": ErrorPublic, "description": "Unknown agent."}})
def read_agent_trades(agent_id: AgentId, page: PageDep, queries: QueriesDep, settings: SettingsDep) -> TradesPagePublic:
    """Executed trades, newest first."""
    result = queries.trades(agent_id, limit=page.limit, offset=page.offset)
    if result.total == 0:
        ensure_agent_exists(queries, agent_id, starting_cash=settings.race.starting_cash)
    return TradesPagePublic(
        items=[TradePublic.from_row(t) for t in result.items], total=result.total, limit=page.limit, offset=page.offset
    )


@router.get("/{agent_id}/decisions", responses={404: {"model": ErrorPublic, "description": "Unknown agent."}})
def read_agent_decisions(
    agent_id: AgentId, page: PageDep, queries: QueriesDep, settings: SettingsDep
) -> DecisionsPagePublic:
    """Every decision with its reasoning, orders, rejections and cost, newest first."""
    result = queries.decisions(agent_id, limit=page.limit, offset=page.offset)
    if result.total == 0:
        ensure_agent_exists(queries, agent_id, starting_cash=settings.race.starting_cash)
    return DecisionsPagePublic(
        items=[DecisionPublic.from_row(d) for d in result.items],
        total=result.total,
        limit=page.limit,
        offset=page.offset,
    )
