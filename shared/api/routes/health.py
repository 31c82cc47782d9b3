from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response, status

from shared.api.deps import OptionalContainerDep
from shared.api.schemas import HealthPublic
from shared.bootstrap import Container

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

CRITICAL = ("configuration", "database")
PROBE_CACHE_S = 5.0
"""How long one round of probes answers every caller: health is public, so it must not be a way to load the
database, ml_service and Redis with one request each."""

_clock = time.monotonic


@dataclass
class _ProbeCache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    checked_at: float = float("-inf")
    result: tuple[dict[str, str], dict[str, str]] | None = None


def _cache_of(request: Request) -> _ProbeCache:
    cache = getattr(request.app.state, "health_probe_cache", None)
    if cache is None:
        cache = request.app.state.health_probe_cache = _ProbeCache()
    return cache


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthPublic, "description": "A critical check failed."}},
)
def read_health(container: OptionalContainerDep, request: Request, response: Response) -> HealthPublic:
    """Each dependency's status. 503 only when a critical one (configuration, database) is down; any other
    problem (market data, a model provider's open circuit, the ML service) is "degraded" with 200.
    The probes run at most once every few seconds; callers in between get the last answer."""
    if container is None:
        checks, details = {"configuration": "unavailable", "database": "unavailable"}, {}
    else:
        cache = _cache_of(request)
        with cache.lock:  # one caller probes, the others wait for its answer
            if cache.result is None or _clock() - cache.checked_at >= PROBE_CACHE_S:
                cache.result = _probe(container)
                cache.checked_at = _clock()
            checks, details = dict(cache.result[0]), dict(cache.result[1])
    if any(checks[name] != "ok" for name in CRITICAL):
        overall = "unavailable"
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        overall = "ok" if all(value == "ok" for value in checks.values()) else "degraded"
    return HealthPublic.model_validate({"status": overall, "checks": checks, "details": details})


def _probe(container: Container) -> tuple[dict[str, str], dict[str, str]]:
    checks: dict[str, str] = {"configuration": "ok", "database": "unavailable"}
    details: dict[str, str] = {}
    try:
        container.queries.ping()
        checks["database"] = "ok"
    except Exception:
        # The exception text can carry a server name or connection details: log it, never return it.
        logger.exception("health check: database ping failed")
    dependency_checks = getattr(container, "dependency_checks", None)
    if dependency_checks is not None:
        try:
            for name, (check_status, detail) in dependency_checks().items():
                checks[name] = check_status
                if detail:
                    details[name] = detail
        except Exception:
            logger.exception("health check: dependency checks failed")
            checks["dependencies"] = "unavailable"
    return checks, details
