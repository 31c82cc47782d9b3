"""Discipline, calibration of the stated confidence, and the cost of thinking."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from shared.domain.discipline import calibration_stats, cost_stats, discipline_stats, percentile
from tests.unit.statistics_fixtures import decision, marks_of


def test_discipline_shares_and_latency() -> None:
    decisions = [
        decision(0, parse_failed=True, hold_code="invalid_output", latency_ms=100.0),
        decision(1, hold_code="timeout", latency_ms=200.0),
        decision(2, orders=3, rejections=("insufficient_cash",), latency_ms=300.0, traded=True),
        decision(3, orders=1, latency_ms=400.0, traded=True),
        decision(4),  # a baseline: no latency measured
    ]
    stats = discipline_stats(decisions)
    assert stats.decisions == 5
    assert stats.parse_failure_share == pytest.approx(0.2)
    assert stats.hold_shares == {"invalid_output": pytest.approx(0.2), "timeout": pytest.approx(0.2)}
    assert stats.rejected_order_shares == {"insufficient_cash": pytest.approx(0.25)}  # 1 of 4 orders asked
    assert stats.latency_mean_ms == pytest.approx(250.0)
    assert stats.latency_p95_ms == pytest.approx(385.0)  # 300 + 0.85 x (400 - 300)


def test_percentile_matches_numpy() -> None:
    values = [float(v) for v in np.random.default_rng(7).exponential(120.0, size=501)]
    for fraction in (0.0, 0.5, 0.95, 1.0):
        assert percentile(values, fraction) == pytest.approx(float(np.percentile(values, fraction * 100)))


def test_no_decisions() -> None:
    stats = discipline_stats([])
    assert stats.decisions == 0
    assert stats.parse_failure_share is None
    assert stats.latency_p95_ms is None
    assert dict(stats.hold_shares) == {}
    assert dict(stats.rejected_order_shares) == {}


def test_calibration_scores_traded_decisions_with_a_confidence_against_the_mark_later() -> None:
    equities = ["100", "101", "100", "102", "99", "103"]
    marks = marks_of(equities)
    floats = [float(e) for e in equities]
    decisions = [
        decision(0, confidence=0.8, traded=True),  # 101 > 100: outcome 1
        decision(1, confidence=0.3, traded=True),  # 100 > 101? no: 0
        decision(2, confidence=0.95, traded=True),  # 102 > 100: 1
        decision(3, confidence=0.6),  # did not trade: not scored
        decision(4, traded=True),  # no confidence: not scored
        decision(5, confidence=0.5, traded=True),  # no mark an hour later: not scored
    ]
    stats = calibration_stats(decisions, marks, floats, 1)
    assert stats.horizon_cycles == 1
    assert stats.scored == 3
    assert stats.brier == pytest.approx((0.2**2 + 0.3**2 + 0.05**2) / 3)
    assert [(b.low, b.high, b.count, b.mean_confidence, b.hit_rate) for b in stats.bins] == [
        (0.3, 0.4, 1, 0.3, 0.0),
        (0.8, 0.9, 1, 0.8, 1.0),
        (0.9, 1.0, 1, 0.95, 1.0),
    ]
    longer = calibration_stats(decisions, marks, floats, 4)  # 0 -> 4: 99 > 100? no; 1 -> 5: 103 > 101: yes
    assert longer.scored == 2
    assert longer.brier == pytest.approx((0.8**2 + 0.7**2) / 2)


def test_calibration_uses_the_latest_mark_before_an_off_grid_decision_and_bins_one_in_the_last() -> None:
    marks = marks_of(["100", "90", "95"])
    floats = [100.0, 90.0, 95.0]
    late = replace(decision(0, confidence=1.0, traded=True), at=marks[0].at.replace(minute=30))
    stats = calibration_stats([late], marks, floats, 1)
    assert stats.scored == 1
    assert stats.brier == pytest.approx(1.0)
    assert [(b.low, b.high, b.count) for b in stats.bins] == [(0.9, 1.0, 1)]


def test_calibration_with_nothing_scored() -> None:
    stats = calibration_stats([decision(0, confidence=0.7)], marks_of(["100", "101"]), [100.0, 101.0], 24)
    assert stats.scored == 0
    assert stats.brier is None
    assert stats.bins == ()


def test_cost_of_thinking_beside_the_return() -> None:
    decisions = [decision(0, cost_usd="0.5"), decision(1), decision(2, cost_usd="1.5")]
    stats = cost_stats(decisions, marks_of(["100", "105", "110"]))
    assert stats.inference_cost_usd == Decimal(2)
    assert stats.cost_per_decision == Decimal("0.66666667")
    assert stats.gross_total_return == pytest.approx(0.1)
    assert stats.net_total_return == pytest.approx(0.08)  # (110 - 2) / 100 - 1
    assert stats.usd_per_return_point == Decimal("0.2")  # 2 USD for 10 points


def test_cost_figures_undefined_without_a_gain_or_marks() -> None:
    losing = cost_stats([decision(0, cost_usd="1")], marks_of(["100", "90"]))
    assert losing.usd_per_return_point is None
    assert losing.net_total_return == pytest.approx(-0.11)
    empty = cost_stats([], [])
    assert empty.inference_cost_usd == 0
    assert empty.cost_per_decision is None
    assert empty.gross_total_return is None
