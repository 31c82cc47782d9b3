from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from shared.api.deps import OptionalContainerDep
from shared.api.schemas import HealthPublic

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthPublic, "description": "A check failed."}},
)
def read_health(container: OptionalContainerDep, response: Response) -> HealthPublic:
    """Liveness plus a database round trip; 503 when the service cannot answer data requests."""
    checks: dict[str, str] = {"configuration": "ok" if container else "unavailable", "database": "unavailable"}
    if container is not None:
        try:
            container.queries.ping()
            checks["database"] = "ok"
        except Exception:
            # The exception text can carry a server name or connection details: log it, never return it.
            logger.exception("health check: database ping failed")
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthPublic.model_validate({"status": "ok" if healthy else "unavailable", "checks": checks})
