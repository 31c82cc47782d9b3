"""The evaluation's pure parts: windows over a range of cycles, and the report's ranks, excess and tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.evaluation.report import build_report, markdown, ranks
from shared.evaluation.runner import AgentOutcome, WindowResult
from shared.evaluation.windows import Window, WindowError, split_windows

HOUR = timedelta(hours=1)
CONTROLS = frozenset({"buy_and_hold", "always_hold", "random"})


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_monthly_and_quarterly_windows_follow_the_calendar() -> None:
    monthly = split_windows(utc(2024, 1, 2), utc(2024, 12, 30, 3), "monthly", cycle=HOUR)
    assert [w.label for w in monthly] == [f"2024-{m:02d}" for m in range(1, 13)]
    assert monthly[0].start == utc(2024, 1, 2)
    assert monthly[1].start == utc(2024, 2, 1)
    assert monthly[-1].end == utc(2024, 12, 30, 3)
    quarterly = split_windows(utc(2024, 1, 2), utc(2024, 12, 30, 3), "quarterly", cycle=HOUR)
    assert [(w.label, w.start) for w in quarterly] == [
        ("2024-Q1", utc(2024, 1, 2)),
        ("2024-Q2", utc(2024, 4, 1)),
        ("2024-Q3", utc(2024, 7, 1)),
        ("2024-Q4", utc(2024, 10, 1)),
    ]
    equal = split_windows(utc(2024, 1, 1), utc(2024, 1, 1, 10), 3, cycle=HOUR, min_cycles=1)
    assert [w.cycles(HOUR) for w in equal] == [3, 3, 4]


def test_equal_windows_cover_a_range_off_the_cycle_grid() -> None:
    windows = split_windows(utc(2024, 1, 1), utc(2024, 1, 2) + timedelta(minutes=30), 2, cycle=HOUR, min_cycles=1)
    assert [(w.start, w.end) for w in windows] == [
        (utc(2024, 1, 1), utc(2024, 1, 1, 12)),
        (utc(2024, 1, 1, 12), utc(2024, 1, 2) + timedelta(minutes=30)),
    ]
    assert [w.cycles(HOUR) for w in windows] == [12, 13]  # 00:00 .. 24:00 is the 25th cycle
    with pytest.raises(WindowError, match="empty"):
        split_windows(utc(2024, 1, 2), utc(2024, 1, 1), "monthly", cycle=HOUR)
    with pytest.raises(WindowError, match="naive"):
        split_windows(datetime(2024, 1, 1), utc(2024, 2, 1), "monthly", cycle=HOUR)


def outcome(agent_id: int, name: str, model: str, total_return: str) -> AgentOutcome:
    return AgentOutcome(agent_id, name, "baseline", model, "0", "", total_return)


def result(index: int, *outcomes: AgentOutcome) -> WindowResult:
    window = Window(index, f"w{index}", utc(2024, 1, 1 + index), utc(2024, 1, 2 + index))
    return WindowResult(window, f"w{index}.db", 24, 0, 0, 0, 0.1, "100000", outcomes, (("Custom ML", "off"),))


def test_ties_share_the_better_rank() -> None:
    outcomes = [outcome(1, "a", "m", "0.10"), outcome(2, "b", "m", "0.10"), outcome(3, "c", "m", "-0.05")]
    assert ranks(outcomes) == {"a": 1, "b": 1, "c": 3}


def test_excess_is_the_difference_of_returns_window_by_window() -> None:
    results = [
        result(0, outcome(1, "Hold", "always_hold", "0"), outcome(2, "Momentum", "momentum", "0.02")),
        result(1, outcome(1, "Hold", "always_hold", "0"), outcome(2, "Momentum", "momentum", "-0.04")),
        result(2, outcome(1, "Hold", "always_hold", "0"), outcome(2, "Momentum", "momentum", "0.05")),
    ]
    report = build_report(results, control_models=CONTROLS, meta={})
    assert report["controls"] == ["Hold"]
    momentum = next(a for a in report["agents"] if a["name"] == "Momentum")
    assert momentum["control"] is False
    assert momentum["rank"] == {"min": 1.0, "median": 1.0, "mean": pytest.approx(4 / 3), "max": 2.0}
    assert momentum["excess"]["Hold"] == {
        "min": -0.04,
        "median": 0.02,
        "mean": pytest.approx(0.01),
        "max": 0.05,
        "windows": 3,
        "beaten": 2,
        "beaten_share": pytest.approx(2 / 3),
    }
    hold = next(a for a in report["agents"] if a["name"] == "Hold")
    assert hold["excess"] == {}  # a control is not compared with itself
    assert report["excluded"] == [{"name": "Custom ML", "reason": "off"}]
    text = markdown(
        {
            **report,
            "windows_spec": "equal",
            "data": "d",
            "start": "s",
            "end": "e",
            "cycle_minutes": 60,
            "starting_cash": "100000",
        }
    )
    assert "| Momentum | +2.00 [-4.00, +5.00], 2/3 |" in text
    assert "| w1 | 2024-01-02T00:00 | 2024-01-03T00:00 | 24 | 0 | Hold (+0.00) |" in text


def test_a_report_needs_windows() -> None:
    with pytest.raises(ValueError, match="no windows"):
        build_report([], control_models=CONTROLS, meta={})
