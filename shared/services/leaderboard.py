"""Use case: the leaderboard, agents ranked by their latest marked equity."""

from __future__ import annotations

from decimal import Decimal

from shared.services.ports import AgentSummary, LeaderboardRow, RaceQueries


def leaderboard(queries: RaceQueries, *, starting_cash: Decimal) -> list[LeaderboardRow]:
    """Every agent (inactive ones too; `summary.agent.active` flags them) ranked by equity, highest first.
    An agent not yet marked to market ranks by its cash; equal equity is ordered, and ranked, by name."""
    summaries = queries.agent_summaries(starting_cash=starting_cash)
    ordered = sorted(summaries, key=lambda s: (-_ranking_value(s), s.agent.name, s.agent.id))
    return [LeaderboardRow(rank=position, summary=s) for position, s in enumerate(ordered, start=1)]


def _ranking_value(summary: AgentSummary) -> Decimal:
    return summary.equity if summary.equity is not None else summary.cash
