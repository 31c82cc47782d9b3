from __future__ import annotations

from fastapi import APIRouter, Request, Response

from shared.api.deps import QueriesDep, SettingsDep
from shared.api.etag import ETAG_RESPONSES, etag_json
from shared.api.schemas import LeaderboardEntryPublic, LeaderboardPublic

router = APIRouter(tags=["leaderboard"])


@router.get("/leaderboard", response_model=LeaderboardPublic, responses=ETAG_RESPONSES)
def read_leaderboard(request: Request, queries: QueriesDep, settings: SettingsDep) -> Response:
    """Agents ranked by equity (best first), with return, max drawdown, trades and fees."""
    from shared.services.leaderboard import leaderboard  # imported on use: keeps `import function_app` light

    starting_cash = settings.race.starting_cash
    rows = leaderboard(queries, starting_cash=starting_cash)
    board = LeaderboardPublic(starting_cash=starting_cash, items=[LeaderboardEntryPublic.from_row(r) for r in rows])
    return etag_json(request, board)
