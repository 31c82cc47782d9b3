"""Decision-based figures: discipline (parse failures, fallback HOLDs, rejections, latency), calibration of the
stated confidence, and what thinking cost. Stdlib only."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from shared.domain.money import q
from shared.domain.statistics import (
    RELIABILITY_BINS,
    CalibrationStats,
    CostStats,
    DecisionFacts,
    DisciplineStats,
    EquityMark,
    ReliabilityBin,
)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def discipline_stats(decisions: Sequence[DecisionFacts]) -> DisciplineStats:
    count = len(decisions)
    if count == 0:
        return DisciplineStats(0, None, {}, {}, None, None)
    holds = Counter(d.hold_code for d in decisions if d.hold_code is not None)
    rejections = Counter(reason for d in decisions for reason in d.rejection_reasons)
    orders = sum(d.orders for d in decisions)
    latencies = [d.latency_ms for d in decisions if d.latency_ms is not None]
    return DisciplineStats(
        decisions=count,
        parse_failure_share=sum(1 for d in decisions if d.parse_failed) / count,
        hold_shares={code: n / count for code, n in sorted(holds.items())},
        rejected_order_shares={reason: n / orders for reason, n in sorted(rejections.items())},
        latency_mean_ms=math.fsum(latencies) / len(latencies) if latencies else None,
        latency_p95_ms=percentile(latencies, 0.95) if latencies else None,
    )


def calibration_stats(
    decisions: Sequence[DecisionFacts], marks: Sequence[EquityMark], equities: Sequence[float], horizon: int
) -> CalibrationStats:
    """Brier score and reliability table of the confidence stated with decisions that traded.

    Outcome of a decision at time t: 1 if the agent's equity `horizon` marks after its mark at t (the latest mark
    at or before t) is above the equity of that mark, else 0. Decisions without such a later mark are not scored.
    `equities` are the marks' equity as floats (converted once by the caller).
    """
    times = [m.at for m in marks]
    count = len(times)
    confidences: list[float] = []
    outcomes: list[int] = []
    current = 0  # decisions are ascending, so each search starts where the last one ended
    for decision in decisions:
        confidence = decision.confidence
        if confidence is None or not decision.traded:
            continue
        current = bisect_right(times, decision.at, lo=current)
        index = current - 1  # the latest mark at or before the decision
        if index < 0 or index + horizon >= count:
            continue
        confidences.append(confidence)
        outcomes.append(1 if equities[index + horizon] > equities[index] else 0)
    if not confidences:
        return CalibrationStats(horizon, 0, None, ())
    brier = math.fsum((c - o) ** 2 for c, o in zip(confidences, outcomes, strict=True)) / len(confidences)
    last_bin = RELIABILITY_BINS - 1
    members: dict[int, tuple[list[float], list[int]]] = {}
    for confidence, outcome in zip(confidences, outcomes, strict=True):
        k = int(confidence * RELIABILITY_BINS)
        in_bin = members.setdefault(k if k < last_bin else last_bin, ([], []))
        in_bin[0].append(confidence)
        in_bin[1].append(outcome)
    bins = tuple(
        ReliabilityBin(
            low=k / RELIABILITY_BINS,
            high=(k + 1) / RELIABILITY_BINS,
            count=len(binned),
            mean_confidence=math.fsum(binned) / len(binned),
            hit_rate=sum(hits) / len(hits),
        )
        for k, (binned, hits) in sorted(members.items())
    )
    return CalibrationStats(horizon, len(confidences), brier, bins)


def cost_stats(decisions: Sequence[DecisionFacts], marks: Sequence[EquityMark]) -> CostStats:
    """Inference cost beside the return: net return subtracts the cost from the final equity."""
    spent = sum((d.cost_usd for d in decisions if d.cost_usd is not None), Decimal(0))
    per_decision = q(spent / len(decisions)) if decisions else None
    gross = net = None
    per_point = None
    if len(marks) >= 2 and marks[0].equity > 0:
        first, last = marks[0].equity, marks[-1].equity
        gross = float(last / first - 1)
        net = float((last - spent) / first - 1)
        if last > first:
            per_point = q(spent / ((last / first - 1) * 100))
    return CostStats(q(spent), per_decision, gross, net, per_point)
