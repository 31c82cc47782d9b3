"""The leaderboard ranks agents by equity (cash until first marked), ties by name, inactive ones flagged."""

from __future__ import annotations

from decimal import Decimal

from shared.domain.model import Agent
from shared.services.leaderboard import leaderboard
from shared.services.ports import AgentSummary
from tests.fakes import T0

D = Decimal


def summary(agent_id: int, name: str, *, cash: str, equity: str | None, active: bool = True) -> AgentSummary:
    return AgentSummary(
        agent=Agent(agent_id, name, "baseline", "always_hold", active=active),
        cash=D(cash),
        equity=D(equity) if equity is not None else None,
        equity_at=T0 if equity is not None else None,
        return_pct=None,
        max_drawdown_pct=None,
        trades=0,
        fees_paid=D(0),
    )


class StubQueries:
    def __init__(self, summaries: list[AgentSummary]) -> None:
        self.summaries = summaries
        self.asked_with: Decimal | None = None

    def agent_summaries(self, *, starting_cash: Decimal) -> list[AgentSummary]:
        self.asked_with = starting_cash
        return self.summaries

    def __getattr__(self, name: str) -> object:  # the leaderboard needs no other query
        raise AssertionError(f"unexpected query {name}")


def test_ranks_by_equity_then_name_with_cash_for_unmarked_agents() -> None:
    queries = StubQueries(
        [
            summary(1, "Zed", cash="100000", equity="90000"),
            summary(2, "Beta", cash="100000", equity="120000"),
            summary(3, "Alpha", cash="100000", equity="120000"),
            summary(4, "New", cash="100000", equity=None),
            summary(5, "Retired", cash="5", equity="95000", active=False),
        ]
    )
    rows = leaderboard(queries, starting_cash=D(100_000))  # type: ignore[arg-type]
    assert [(r.rank, r.summary.agent.name) for r in rows] == [
        (1, "Alpha"),
        (2, "Beta"),
        (3, "New"),
        (4, "Retired"),
        (5, "Zed"),
    ]
    assert rows[3].summary.agent.active is False
    assert queries.asked_with == D(100_000)


def test_empty_race_has_an_empty_leaderboard() -> None:
    assert leaderboard(StubQueries([]), starting_cash=D(1)) == []  # type: ignore[arg-type]
