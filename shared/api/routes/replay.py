"""`POST /api/admin/decisions/{decision_id}/replay`: rerun a stored decision, write nothing (shared.services.replay).

An admin route (the key is checked before the body is read, as for the job triggers): a replay may call a paid
model, so it is not public.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from shared.api.deps import ContainerDep, require_admin_key
from shared.api.errors import ApiError, InvalidRequestError, NotFoundError
from shared.api.replay_schemas import ReplayPublic, ReplayRequest
from shared.api.routes.admin import KeyFirstRoute
from shared.api.schemas import ErrorPublic
from shared.services.replay import DecisionNotFoundError, ReplayAgentError, ReplayRefusedError

router = APIRouter(
    prefix="/admin/decisions",
    tags=["admin"],
    route_class=KeyFirstRoute,
    dependencies=[Depends(require_admin_key)],
    responses={
        400: {"model": ErrorPublic, "description": "The body could not be read."},
        401: {"model": ErrorPublic, "description": "Missing or wrong admin key (x-admin-key header)."},
        403: {"model": ErrorPublic, "description": "Admin endpoints are disabled: Api__AdminKey is not set."},
    },
)

DecisionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The decision's numeric id.")]
ReplayBody = Annotated[ReplayRequest | None, Body(description="Optional: the model to replay on.")]


class ReplayConflictError(ApiError):
    status_code = HTTPStatus.CONFLICT
    code = "replay_refused"

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@router.post(
    "/{decision_id}/replay",
    responses={
        404: {"model": ErrorPublic, "description": "Unknown decision."},
        409: {
            "model": ErrorPublic,
            "description": "The decision cannot be rerun exactly: `snapshot_mismatch` (the snapshot rebuilt from "
            "the stored candles has another sha256 than the stored one; both are in the message) or "
            "`no_replay_inputs` (recorded before decisions kept their inputs). Nothing was run.",
        },
        422: {"model": ErrorPublic, "description": "Invalid body, or an unknown agent or provider to replay on."},
    },
)
async def replay_decision(decision_id: DecisionId, container: ContainerDep, body: ReplayBody = None) -> ReplayPublic:
    """Rerun the decision on its own model (or `agent_id`'s, or `provider`/`model`'s) on the snapshot rebuilt
    from the stored candles and the portfolio it saw; the original and the counterfactual side by side.
    No portfolio, decision, trade or equity row is written."""
    request = body or ReplayRequest()
    try:
        result = await container.replay_decision(
            decision_id,
            agent_id=request.agent_id,
            provider=str(request.provider) if request.provider is not None else None,
            model=request.model,
        )
    except DecisionNotFoundError as exc:
        raise NotFoundError(str(exc)) from exc
    except ReplayAgentError as exc:
        raise InvalidRequestError(str(exc)) from exc
    except ReplayRefusedError as exc:
        raise ReplayConflictError(str(exc), exc.code) from exc
    return ReplayPublic.of(result)
