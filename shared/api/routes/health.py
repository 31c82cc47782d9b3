from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from shared.api.deps import OptionalContainerDep
from shared.api.schemas import HealthPublic

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

CRITICAL = ("configuration", "database")


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthPublic, "description": "A critical check failed."}},
)
def read_health(container: OptionalContainerDep, response: Response) -> HealthPublic:
    """Each dependency's status. 503 only when a critical one (configuration, database) is down; any other
    problem (market data, a model provider's open circuit, the ML service) is "degraded" with 200."""
    checks: dict[str, str] = {"configuration": "ok" if container else "unavailable", "database": "unavailable"}
    details: dict[str, str] = {}
    if container is not None:
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
    if any(checks[name] != "ok" for name in CRITICAL):
        overall = "unavailable"
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        overall = "ok" if all(value == "ok" for value in checks.values()) else "degraded"
    return HealthPublic.model_validate({"status": overall, "checks": checks, "details": details})
