from __future__ import annotations

from fastapi import APIRouter

from shared.api.deps import QueriesDep, SettingsDep, StatisticsDep
from shared.api.schemas import LeaderboardEntryPublic, LeaderboardPublic
from shared.api.statistics_status import statistics_status

router = APIRouter(tags=["leaderboard"])


@router.get("/leaderboard")
def read_leaderboard(queries: QueriesDep, settings: SettingsDep, statistics: StatisticsDep) -> LeaderboardPublic:
    """Agents ranked by equity (best first), with return, max drawdown, trades and fees, and the headline
    statistics as last computed (Sharpe, max drawdown, win rate, net return, excess over buy-and-hold BTC)."""
    # Imported on use: keeps `import function_app` light.
    from shared.services.leaderboard import leaderboard
    from shared.services.race_statistics import buy_and_hold_control_id, headline

    starting_cash = settings.race.starting_cash
    rows = leaderboard(queries, starting_cash=starting_cash)
    stored = statistics.latest() if statistics is not None else None
    control = buy_and_hold_control_id(r.summary.agent for r in rows)
    by_agent = stored.by_agent if stored is not None else {}
    items = []
    for row in rows:
        figures = by_agent.get(row.summary.agent.id)
        items.append(
            LeaderboardEntryPublic.from_row(
                row, headline(figures, buy_and_hold_id=control) if figures is not None else None
            )
        )
    return LeaderboardPublic(starting_cash=starting_cash, items=items, statistics=statistics_status(statistics, stored))
