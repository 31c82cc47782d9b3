"""compute_race_statistics end to end: every figure filled from one call, controls compared, bad input refused,
and nothing heavy imported until the statistics are computed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from shared.domain.model import Side
from shared.domain.race_statistics import compute_race_statistics
from shared.domain.statistics import AgentInputs, EquityMark
from tests.unit.statistics_fixtures import T0, agent, decision, fill, marks_of

REPO = Path(__file__).resolve().parents[2]
START = Decimal(100_000)


def random_walk(seed: int, cycles: int, drift: float = 0.0) -> list[str]:
    rng = np.random.default_rng(seed)
    equity = 100_000.0
    values = [f"{equity:.8f}"]
    for r in rng.normal(drift, 0.004, cycles):
        equity *= 1 + r
        values.append(f"{equity:.8f}")
    return values


def small_race() -> list[AgentInputs]:
    trader = agent(
        1,
        marks_of(random_walk(1, 200, drift=0.001)),
        name="llm",
        fills=[fill(0, Side.BUY, "1", "40000", "40"), fill(30, Side.SELL, "1", "41000", "41")],
        decisions=[
            decision(0, orders=1, traded=True, confidence=0.7, latency_ms=800.0, cost_usd="0.01"),
            decision(1, hold_code="timeout", cost_usd="0.01"),
            decision(30, orders=2, rejections=("insufficient_cash",), traded=True, confidence=0.4, cost_usd="0.02"),
        ],
    )
    holder = agent(2, marks_of(random_walk(2, 200)), name="buy-and-hold BTC")
    cash = agent(3, marks_of(["100000"] * 201), name="always-hold")
    return [trader, holder, cash]


def test_one_call_fills_every_figure() -> None:
    results = compute_race_statistics(
        small_race(), control_ids=[2, 3], starting_cash=START, periods_per_year=8760, bootstrap_replications=200
    )
    assert sorted(results) == [1, 2, 3]
    llm = results[1]
    assert llm.name == "llm"
    assert llm.observations == 201
    assert llm.returns == 200
    assert llm.sharpe is not None
    assert llm.sharpe_standard_error is not None
    assert llm.deflated_sharpe_probability is not None
    assert 0.0 <= llm.deflated_sharpe_probability <= 1.0
    assert llm.trades.round_trips == 1
    assert llm.trades.biggest_win == Decimal(1000 - 40 - 41)
    assert llm.fees_share_of_start == pytest.approx(81 / 100_000)
    assert llm.cost.inference_cost_usd == Decimal("0.04")
    assert llm.discipline.decisions == 3
    assert llm.discipline.hold_shares == {"timeout": pytest.approx(1 / 3)}
    assert llm.discipline.rejected_order_shares == {"insufficient_cash": pytest.approx(1 / 3)}
    assert llm.calibration.horizon_cycles == 24
    assert llm.calibration.scored == 2
    assert [c.control_agent_id for c in llm.versus_controls] == [2, 3]
    assert [c.control_agent_id for c in results[2].versus_controls] == [3]  # a control against the others
    assert [c.control_agent_id for c in results[3].versus_controls] == [2]
    # The cash control never moves: no ratio can be formed, and it is never invested.
    cash = results[3]
    assert cash.sharpe is None
    assert cash.sharpe_standard_error is None
    assert cash.deflated_sharpe_probability is None
    assert cash.max_drawdown == 0.0
    assert cash.exposure == 0.0
    assert cash.total_return == 0.0


def test_same_race_same_numbers_and_the_seed_matters() -> None:
    def run(seed: int):  # type: ignore[no-untyped-def]
        return compute_race_statistics(
            small_race(),
            control_ids=[2],
            starting_cash=START,
            periods_per_year=8760,
            seed=seed,
            bootstrap_replications=200,
        )

    assert run(1) == run(1)
    assert run(1)[1].versus_controls != run(2)[1].versus_controls


def test_an_agent_without_marks_yet_gets_none_not_a_crash() -> None:
    race = [*small_race(), agent(4, [], name="new")]
    results = compute_race_statistics(
        race, control_ids=[2], starting_cash=START, periods_per_year=8760, bootstrap_replications=50
    )
    new = results[4]
    assert new.observations == 0
    assert new.total_return is None
    assert new.sharpe is None
    assert new.exposure is None
    assert new.versus_controls == ()
    assert new.turnover is None
    assert new.max_drawdown_duration is None


NAIVE = datetime(2024, 1, 1)


def _with(index: int, **changes: object) -> list[AgentInputs]:
    race = small_race()
    race[index] = replace(race[index], **changes)  # type: ignore[arg-type]
    return race


BAD_INPUT = {
    "naive mark time": (
        _with(1, marks=[EquityMark(NAIVE, Decimal(1), Decimal(1))]),
        r"agent 2 .*equity mark 0 has a naive",
    ),
    "unsorted marks": (
        _with(1, marks=list(reversed(marks_of(["1", "2", "3"])))),
        r"agent 2 .*strictly ascending.*mark 1",
    ),
    "duplicate mark time": (
        _with(1, marks=[EquityMark(T0, Decimal(1), Decimal(1))] * 2),
        r"strictly ascending",
    ),
    "negative equity": (
        _with(1, marks=marks_of(["100", "-1"], cash=[Decimal(0), Decimal(0)])),
        r"agent 2 .*equity of mark 1 must be >= 0",
    ),
    "NaN equity": (_with(1, marks=marks_of(["100", "NaN"])), r"equity of mark 1 is not a finite Decimal"),
    "negative fee": (_with(0, fills=[fill(0, Side.BUY, "1", "10", "-1")]), r"agent 1 .*fee of fill 0 must be >= 0"),
    "zero quantity": (_with(0, fills=[fill(0, Side.BUY, "0", "10", "0")]), r"quantity of fill 0 must be > 0"),
    "naive fill": (
        _with(0, fills=[replace(fill(0, Side.BUY, "1", "10", "0"), at=NAIVE)]),
        r"fill 0 has a naive",
    ),
    "side as plain text": (
        _with(0, fills=[replace(fill(0, Side.BUY, "1", "10", "0"), side="BUY")]),  # type: ignore[arg-type]
        r"fill 0 has side 'BUY', not a Side",
    ),
    "oversold": (_with(0, fills=[fill(0, Side.SELL, "1", "10", "0")]), r"agent 1 \(llm\): fill 0 sells 1 BTC"),
    "confidence above 1": (
        _with(0, decisions=[decision(0, confidence=1.5, orders=1, traded=True)]),
        r"decision 0 states confidence 1.5",
    ),
    "more rejections than orders": (
        _with(0, decisions=[decision(0, orders=1, rejections=("a", "b"))]),
        r"decision 0 rejects 2 orders but asked for only 1",
    ),
    "unsorted decisions": (_with(0, decisions=[decision(2), decision(1)]), r"decisions must be in time order"),
    "negative cost": (_with(0, decisions=[decision(0, cost_usd="-0.1")]), r"cost of decision 0 must be >= 0"),
    "negative latency": (_with(0, decisions=[decision(0, latency_ms=-1.0)]), r"negative latency"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_with_a_message_naming_it(case: str) -> None:
    race, message = BAD_INPUT[case]
    with pytest.raises(ValueError, match=message):
        compute_race_statistics(race, control_ids=[2], starting_cash=START, periods_per_year=8760)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"control_ids": [9]}, r"control ids \[9\] are not among the agents"),
        ({"control_ids": [2, 2]}, r"control ids must be unique"),
        ({"starting_cash": Decimal(0)}, r"starting_cash must be a positive"),
        ({"periods_per_year": 0.0}, r"periods_per_year must be a positive"),
        ({"periods_per_year": float("nan")}, r"periods_per_year must be a positive"),
        ({"bootstrap_replications": 0}, r"bootstrap_replications must be at least 1"),
        ({"confidence": 1.0}, r"confidence must be strictly between 0 and 1"),
        ({"calibration_horizon": 0}, r"calibration_horizon must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"control_ids": [2], "starting_cash": START, "periods_per_year": 8760.0}
    settings.update(arguments)
    with pytest.raises(ValueError, match=message):
        compute_race_statistics(small_race(), **settings)  # type: ignore[arg-type]


def test_duplicate_agent_ids_are_refused() -> None:
    race = small_race()
    with pytest.raises(ValueError, match="agent ids must be unique"):
        compute_race_statistics([*race, race[0]], control_ids=[2], starting_cash=START, periods_per_year=8760)


def test_marks_an_hour_apart_check_fast_and_slow_paths_alike() -> None:
    # The bulk check passes good input without walking it; a later bad item is still found and named.
    marks = marks_of(random_walk(3, 500))
    marks[400] = replace(marks[400], at=marks[399].at)
    with pytest.raises(ValueError, match=r"mark 400 at .* does not follow"):
        compute_race_statistics([agent(1, marks)], control_ids=[], starting_cash=START, periods_per_year=8760)


def test_importing_the_statistics_loads_no_numpy_or_arch() -> None:
    code = (
        "import sys\n"
        "import shared.domain.race_statistics, shared.domain.significance, shared.domain.statistics\n"
        "heavy = sorted(m for m in ('numpy', 'scipy', 'pandas', 'arch', 'statsmodels') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
