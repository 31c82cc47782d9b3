"""Dependencies of the routes, as `Annotated` aliases (full-stack-fastapi-template style).

The container is resolved per request through the provider given to `create_app`, never when the app is
built: importing `function_app` stays cheap and the first request of a warm worker pays for the wiring.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from shared.api.contract import SETTING
from shared.api.errors import ForbiddenError, InvalidRequestError, ServiceUnavailableError, UnauthorizedError
from shared.api.schemas import UtcDatetime
from shared.bootstrap import Container
from shared.config import Settings
from shared.services.ports import RaceQueries
from shared.services.statistics_ports import StatisticsRepository

logger = logging.getLogger(__name__)

ContainerProvider = Callable[[], Container]


def container_provider(request: Request) -> ContainerProvider:
    provider: ContainerProvider = request.app.state.container_provider
    return provider


def get_optional_container(provider: Annotated[ContainerProvider, Depends(container_provider)]) -> Container | None:
    """The container, or None when it cannot be built (bad settings, missing secret): health reports that."""
    try:
        return provider()
    except Exception:
        logger.exception("the application container could not be built")
        return None


def get_container(container: Annotated[Container | None, Depends(get_optional_container)]) -> Container:
    if container is None:
        raise ServiceUnavailableError("the service is not ready: its configuration could not be loaded")
    return container


ContainerDep = Annotated[Container, Depends(get_container)]
OptionalContainerDep = Annotated[Container | None, Depends(get_optional_container)]


def get_queries(container: ContainerDep) -> RaceQueries:
    return container.queries


def get_settings(container: ContainerDep) -> Settings:
    return container.settings


def get_statistics(container: ContainerDep) -> StatisticsRepository | None:
    return container.statistics


QueriesDep = Annotated[RaceQueries, Depends(get_queries)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# None where the deployment stores no statistics: the routes then say so instead of failing.
StatisticsDep = Annotated[StatisticsRepository | None, Depends(get_statistics)]


def require_admin_key(
    settings: SettingsDep,
    x_admin_key: Annotated[str | None, Header(description="The admin key (Api__AdminKey).")] = None,
    x_functions_key: Annotated[str | None, Header(description="Alternative header for the admin key.")] = None,
) -> None:
    check_admin_key(settings, x_admin_key or x_functions_key)


def check_admin_key(settings: Settings, presented: str | None) -> None:
    configured = settings.api.admin_key
    if configured is None:
        raise ForbiddenError("admin endpoints disabled: set Api__AdminKey")
    if not presented:
        raise UnauthorizedError("missing admin key: send it in the x-admin-key header")
    # Constant time, on bytes: compare_digest on str rejects non-ASCII input with a TypeError (a 500).
    if not hmac.compare_digest(presented.encode(), configured.get_secret_value().encode()):
        raise UnauthorizedError("invalid admin key")


AdminDep = Annotated[None, Depends(require_admin_key)]


DEFAULT_PAGE_SIZE = 50
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int


def get_page_params(
    settings: SettingsDep,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="Items per page (default 50, at most Api__MaxPageSize).",
            json_schema_extra={SETTING: "max_page_size"},
        ),
    ] = None,
    # Bounded to a SQL INTEGER: the database drivers cannot bind 2**63 (it was a 500).
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip, newest first.")] = 0,
) -> PageParams:
    max_page_size = settings.api.max_page_size
    if limit is None:
        limit = min(DEFAULT_PAGE_SIZE, max_page_size)
    elif limit > max_page_size:
        raise InvalidRequestError(f"query.limit: must be at most {max_page_size}, got {limit}")
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(get_page_params)]


StartQuery = Annotated[UtcDatetime | None, Query(description="Inclusive lower bound, ISO 8601 with an offset.")]
EndQuery = Annotated[UtcDatetime | None, Query(description="Inclusive upper bound, ISO 8601 with an offset.")]


def ensure_time_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidRequestError("query.start: must not be after query.end")
