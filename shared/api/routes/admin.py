"""Manual triggers of the three timer jobs (backfills, demos, recovering a missed cycle).

They call the same container methods as the timers, so running one twice is as harmless as a timer firing
twice. Protected by `Api__AdminKey`: the Functions host lets every request through (anonymous auth level).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from shared.api.deps import ContainerDep, check_admin_key, require_admin_key
from shared.api.errors import ApiError, InvalidRequestError, ServiceUnavailableError
from shared.api.schemas import ErrorPublic, JobReportPublic, JobRequest, UtcDatetime
from shared.services.race_clock import Job, JobTimeRefused

logger = logging.getLogger(__name__)


class KeyFirstRoute(APIRoute):
    """Checks the admin key before FastAPI reads the body: no key is a 401 whatever the body holds."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            try:
                settings = request.app.state.container_provider().settings
            except Exception:
                logger.exception("the application container could not be built")
                raise ServiceUnavailableError(
                    "the service is not ready: its configuration could not be loaded"
                ) from None
            check_admin_key(settings, request.headers.get("x-admin-key") or request.headers.get("x-functions-key"))
            return await handler(request)

        return key_first


router = APIRouter(
    prefix="/admin/jobs",
    tags=["admin"],
    route_class=KeyFirstRoute,
    dependencies=[Depends(require_admin_key)],  # documents the headers (and checks again, cheaply)
    responses={
        400: {"model": ErrorPublic, "description": "The body could not be read."},
        401: {"model": ErrorPublic, "description": "Missing or wrong admin key (x-admin-key header)."},
        403: {"model": ErrorPublic, "description": "Admin endpoints are disabled: Api__AdminKey is not set."},
        409: {
            "model": ErrorPublic,
            "description": "`at` is a time the race cannot run the job at (ahead of its "
            "clock or data, or before its latest cycle); nothing was written.",
        },
    },
)

AtQuery = Annotated[
    UtcDatetime | None,
    Query(description="When the job runs as of, with offset (default: the race's next due time for the job)."),
]
JobBody = Annotated[JobRequest | None, Body(description="Optional; `at` may be given here instead.")]


class JobTimeConflictError(ApiError):
    status_code = HTTPStatus.CONFLICT
    code = "job_time_refused"


def requested_time(at_query: datetime | None, body: JobRequest | None) -> datetime | None:
    at_body = body.at if body else None
    if at_query is not None and at_body is not None and at_query != at_body:
        raise InvalidRequestError("at: given in both the query and the body with different values")
    return at_query or at_body


async def job_time(container: ContainerDep, job: Job, at_query: datetime | None, body: JobRequest | None) -> datetime:
    """The requested time checked against the race's clock, or the job's next due time (409 when refused)."""
    requested = requested_time(at_query, body)
    try:
        return await run_in_threadpool(container.admin_job_time, job, requested)
    except JobTimeRefused as exc:
        raise JobTimeConflictError(str(exc)) from exc


@router.post("/market-data")
async def trigger_market_data(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Fetch and store candles up to `at`, as the market-data timer does."""
    moment = await job_time(container, "market-data", at, body)
    report = await run_in_threadpool(container.run_market_data_job, moment)
    return JobReportPublic(job="market-data", at=moment, report=report.as_dict())


@router.post("/run-agents")
async def trigger_run_agents(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Run the decision cycle that `at` belongs to (a cycle already run changes nothing)."""
    requested = requested_time(at, body)
    cycle_time = await job_time(container, "run-agents", at, body)
    moment = requested or cycle_time
    report = await container.run_agents_job_async(cycle_time)
    return JobReportPublic(job="run-agents", at=moment, cycle_time=cycle_time, report=report.as_dict())


@router.post("/equity-snapshot")
async def trigger_equity_snapshot(container: ContainerDep, at: AtQuery = None, body: JobBody = None) -> JobReportPublic:
    """Mark every portfolio to market at `at` (floored to the cycle), as the equity timer does."""
    moment = await job_time(container, "equity-snapshot", at, body)
    report = await run_in_threadpool(container.run_equity_job, moment)
    return JobReportPublic(job="equity-snapshot", at=moment, report=report.as_dict())
