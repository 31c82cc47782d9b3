"""Manual triggers of the three timer jobs (backfills, demos, recovering a missed cycle).

They call the same container methods as the timers, so running one twice is as harmless as a timer firing
twice. Protected by `Api__AdminKey`: the Functions host lets every request through (anonymous auth level).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from starlette.concurrency import run_in_threadpool

from shared.api.deps import ContainerDep, require_admin_key
from shared.api.errors import InvalidRequestError
from shared.api.schemas import ErrorPublic, JobReportPublic, JobRequest, UtcDatetime

router = APIRouter(
    prefix="/admin/jobs",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses={
        401: {"model": ErrorPublic, "description": "Missing or wrong admin key (x-admin-key header)."},
        403: {"model": ErrorPublic, "description": "Admin endpoints are disabled: Api__AdminKey is not set."},
    },
)

AtQuery = Annotated[UtcDatetime | None, Query(description="When the job runs as of (default: now), with offset.")]
JobBody = Annotated[JobRequest | None, Body(description="Optional; `at` may be given here instead.")]


def job_time(at_query: datetime | None, body: JobRequest | None) -> datetime:
    at_body = body.at if body else None
    if at_query is not None and at_body is not None and at_query != at_body:
        raise InvalidRequestError("at: given in both the query and the body with different values")
    return at_query or at_body or datetime.now(UTC)


@router.post("/market-data")
async def trigger_market_data(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Fetch and store candles up to `at`, as the market-data timer does."""
    moment = job_time(at, body)
    report = await run_in_threadpool(container.run_market_data_job, moment)
    return JobReportPublic(job="market-data", at=moment, report=report.as_dict())


@router.post("/run-agents")
async def trigger_run_agents(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Run the decision cycle that `at` belongs to (a cycle already run changes nothing)."""
    moment = job_time(at, body)
    cycle_time = container.cycle_time(moment)
    report = await container.run_agents_job_async(cycle_time)
    return JobReportPublic(job="run-agents", at=moment, cycle_time=cycle_time, report=report.as_dict())


@router.post("/equity-snapshot")
async def trigger_equity_snapshot(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Mark every portfolio to market at `at`, as the equity timer does."""
    moment = job_time(at, body)
    report = await run_in_threadpool(container.run_equity_job, moment)
    return JobReportPublic(job="equity-snapshot", at=moment, report=report.as_dict())
