"""The statistics refresh: computed once per new mark, controls chosen from the roster, stored as one set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.model import Agent
from shared.domain.statistics import AgentInputs, AgentStatistics, EquityMark
from shared.services.race_statistics import (
    buy_and_hold_control_id,
    control_ids,
    headline,
    periods_per_year,
    refresh_race_statistics,
)
from tests.fakes import T0, FakeClock
from tests.statistics_fakes import FakeStatisticsRepository, sample_statistics

HOUR = timedelta(hours=1)
CASH = Decimal(100_000)

ROSTER = [
    Agent(1, "Buy & Hold BTC", "baseline", "buy_and_hold", params={"symbol": "BTC"}),
    Agent(2, "Momentum 24h", "baseline", "momentum"),
    Agent(3, "Random Trader", "baseline", "random"),
    Agent(4, "Always Hold", "baseline", "always_hold"),
    Agent(5, "Equal-Weight Buy & Hold", "baseline", "equal_weight"),
    Agent(6, "llama", "llama", "llama-3.1-8b-instant"),
    Agent(7, "Buy & Hold ETH", "baseline", "buy_and_hold", params={"symbol": "ETH"}),
    Agent(8, "Impostor", "llama", "always_hold"),  # an LLM named like a control is not one
]


def inputs(agent: Agent, hours: int, *, start: int = 0) -> AgentInputs:
    marks = tuple(EquityMark(T0 + h * HOUR, CASH + h, CASH) for h in range(start, start + hours))
    return AgentInputs(agent.id, agent.name, marks, (), ())


class RecordingCompute:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, agents: Sequence[AgentInputs], **kwargs: Any) -> dict[int, AgentStatistics]:
        self.calls.append({"agents": [a.agent_id for a in agents], **kwargs})
        return {a.agent_id: sample_statistics(a.agent_id, observations=len(a.marks)) for a in agents}


def repository(hours: int = 48) -> FakeStatisticsRepository:
    return FakeStatisticsRepository().with_agents([(a, inputs(a, hours)) for a in ROSTER])


def refresh(repo: FakeStatisticsRepository, compute: RecordingCompute, **kwargs: Any) -> Any:
    return refresh_race_statistics(
        repository=repo,
        starting_cash=CASH,
        cycle_minutes=60,
        clock=FakeClock(T0 + 100 * HOUR),
        compute=compute,
        **kwargs,
    )


def test_controls_are_the_baselines_with_control_models_and_buy_and_hold_prefers_btc() -> None:
    assert control_ids(ROSTER) == (1, 3, 4, 5, 7)
    assert buy_and_hold_control_id(ROSTER) == 1
    assert buy_and_hold_control_id(reversed(ROSTER)) == 1  # not the first seen: the BTC one
    assert buy_and_hold_control_id([ROSTER[6], ROSTER[1]]) == 7  # no BTC one: any buy-and-hold
    assert buy_and_hold_control_id(ROSTER[1:6]) is None


def test_periods_per_year_follows_the_cycle_length() -> None:
    assert periods_per_year(60) == 8760
    assert periods_per_year(15) == 4 * 8760
    with pytest.raises(ValueError, match="at least 1"):
        periods_per_year(0)


def test_a_refresh_computes_every_marked_agent_and_stores_the_set_for_the_newest_mark() -> None:
    repo, compute = repository(), RecordingCompute()

    report = refresh(repo, compute)

    [call] = compute.calls
    assert call["agents"] == [a.id for a in ROSTER]
    assert call["control_ids"] == [1, 3, 4, 5, 7]
    assert (call["starting_cash"], call["periods_per_year"]) == (CASH, 8760)
    assert repo.stored is not None
    assert repo.stored.computed_for == T0 + 47 * HOUR
    assert repo.stored.computed_at == T0 + 100 * HOUR
    assert sorted(repo.stored.by_agent) == [a.id for a in ROSTER]
    assert report.as_dict() == {
        "computed_for": (T0 + 47 * HOUR).isoformat(),
        "computed": len(ROSTER),
        "controls": [1, 3, 4, 5, 7],
        "duration_s": pytest.approx(report.duration_s, abs=1e-3),
        "skipped": None,
    }


def test_nothing_new_nothing_computed_and_a_new_mark_computes_again() -> None:
    repo, compute = repository(), RecordingCompute()
    refresh(repo, compute)

    again = refresh(repo, compute)

    assert again.skipped == "already computed for the latest mark"
    assert len(compute.calls) == 1
    assert "race_history" not in repo.calls[repo.calls.index("save") :]  # the year of marks is not even read
    forced = refresh(repo, compute, force=True)
    assert (forced.skipped, len(compute.calls)) == (None, 2)

    repo.with_agents([(a, inputs(a, 49)) for a in ROSTER])
    assert refresh(repo, compute).computed_for == T0 + 48 * HOUR
    assert len(compute.calls) == 3


def test_before_any_mark_nothing_is_computed() -> None:
    repo, compute = FakeStatisticsRepository().with_agents([(a, inputs(a, 0)) for a in ROSTER]), RecordingCompute()

    assert refresh(repo, compute).skipped == "no equity marks yet"
    assert compute.calls == []
    assert repo.stored is None


def test_an_agent_not_marked_yet_is_left_out_and_cannot_be_a_control() -> None:
    # The equal-weight control joined the race after its start: it has no mark until its first cycle.
    agents = [(a, inputs(a, 0 if a.id == 5 else 48)) for a in ROSTER]
    repo, compute = FakeStatisticsRepository().with_agents(agents), RecordingCompute()

    refresh(repo, compute)

    assert 5 not in compute.calls[0]["agents"]
    assert compute.calls[0]["control_ids"] == [1, 3, 4, 7]


def test_a_newer_set_stored_meanwhile_is_not_overwritten() -> None:
    repo, compute = repository(), RecordingCompute()
    repo.refuse_save = True

    report = refresh(repo, compute)

    assert report.skipped == "a newer set was stored meanwhile"
    assert repo.stored is None


def test_the_headline_takes_the_excess_over_the_buy_and_hold_control() -> None:
    figures = sample_statistics(6, controls={1: "Buy & Hold BTC", 4: "Always Hold"})

    line = headline(figures, buy_and_hold_id=1)

    assert (line.sharpe, line.max_drawdown, line.win_rate) == (1.8712, 0.1568, 0.5714)
    assert line.net_return == figures.cost.net_total_return
    assert line.excess_over_buy_and_hold is not None
    assert line.excess_over_buy_and_hold.control_agent_id == 1
    assert headline(figures, buy_and_hold_id=None).excess_over_buy_and_hold is None
    assert (
        headline(sample_statistics(1, controls={4: "Always Hold"}), buy_and_hold_id=1).excess_over_buy_and_hold is None
    )
