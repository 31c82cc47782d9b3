from __future__ import annotations

from fastapi import APIRouter

from shared.api.deps import QueriesDep, SettingsDep, StatisticsDep
from shared.api.errors import NotFoundError
from shared.api.routes.agents import AgentId
from shared.api.schemas import ErrorPublic
from shared.api.statistics_schemas import AgentStatisticsPublic, AgentStatsPublic
from shared.api.statistics_status import statistics_status

router = APIRouter(prefix="/agents", tags=["agents"])


@router.get("/{agent_id}/stats", responses={404: {"model": ErrorPublic, "description": "Unknown agent."}})
def read_agent_stats(
    agent_id: AgentId, queries: QueriesDep, settings: SettingsDep, statistics: StatisticsDep
) -> AgentStatsPublic:
    """Every statistic of the agent as computed after the latest cycle's equity marks (never on this request):
    performance, round trips, cost, discipline, calibration and the excess over each control."""
    summary = queries.agent_summary(agent_id, starting_cash=settings.race.starting_cash)
    if summary is None:
        raise NotFoundError(f"agent {agent_id} not found")
    stored = statistics.latest() if statistics is not None else None
    figures = stored.by_agent.get(agent_id) if stored is not None else None
    missing = None
    if stored is not None and figures is None:
        missing = f"No statistics for this agent yet: it had no equity mark by {stored.computed_for.isoformat()}."
    return AgentStatsPublic(
        agent_id=agent_id,
        name=summary.agent.name,
        status=statistics_status(statistics, stored, missing=missing),
        statistics=AgentStatisticsPublic.from_statistics(figures) if figures is not None else None,
    )
