from __future__ import annotations

from fastapi import APIRouter

from shared.api.deps import QueriesDep, SettingsDep
from shared.api.schemas import LeaderboardEntryPublic, LeaderboardPublic

router = APIRouter(tags=["leaderboard"])


@router.get("/leaderboard")
def read_leaderboard(queries: QueriesDep, settings: SettingsDep) -> LeaderboardPublic:
    """Agents ranked by equity (best first), with return, max drawdown, trades and fees."""
    from shared.services.leaderboard import leaderboard  # imported on use: keeps `import function_app` light

    starting_cash = settings.race.starting_cash
    rows = leaderboard(queries, starting_cash=starting_cash)
    return LeaderboardPublic(starting_cash=starting_cash, items=[LeaderboardEntryPublic.from_row(r) for r in rows])
