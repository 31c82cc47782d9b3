"""Checks of the statistics' input: bad input is refused with a ValueError that names the agent and the item,
before anything is computed (a figure computed from unsorted marks or naive times would be silently wrong)."""

from __future__ import annotations

import math
import operator
from datetime import datetime
from decimal import Decimal

from shared.domain.model import Side
from shared.domain.statistics import AgentInputs

_TZINFO = operator.attrgetter("tzinfo")
_AT = operator.attrgetter("at")
_EQUITY, _CASH = operator.attrgetter("equity"), operator.attrgetter("cash")
_QUANTITY, _PRICE, _FEE = operator.attrgetter("quantity"), operator.attrgetter("price"), operator.attrgetter("fee")
_ORDERS, _REJECTIONS = operator.attrgetter("orders"), operator.attrgetter("rejection_reasons")
_COST, _CONFIDENCE = operator.attrgetter("cost_usd"), operator.attrgetter("confidence")
_LATENCY = operator.attrgetter("latency_ms")


def _check_time(who: str, what: str, at: datetime) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{who}: {what} has a naive or missing time {at!r}; times must be UTC-aware")


def _check_money(who: str, what: str, value: Decimal, *, positive: bool = False) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{who}: {what} is not a finite Decimal: {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{who}: {what} must be {'> 0' if positive else '>= 0'}, got {value}")


def check_agent_inputs(agent: AgentInputs) -> None:
    """Raise ValueError, naming the agent and the offending item, for input the statistics cannot trust.

    Times UTC-aware; marks strictly ascending; fills and decisions in time order; money finite and not
    negative (fill quantity and price > 0); confidence in [0, 1]; a decision rejects no more orders than it asked.
    A year of hourly marks and decisions is checked in bulk first; only a failure walks item by item to name it.
    """
    if not _looks_valid(agent):
        _raise_first_problem(agent)
    if not _fills_look_valid(agent):
        _raise_first_fill_problem(agent)


def _positive_money(values: list[Decimal], *, strictly: bool) -> bool:
    # Decimal sums raise on sNaN or inf - inf and carry a quiet NaN; min() raises comparing a NaN.
    if not values:
        return True
    lowest = min(values)
    return sum(values, Decimal(0)).is_finite() and (lowest > 0 if strictly else lowest >= 0)


def _fills_look_valid(agent: AgentInputs) -> bool:
    try:
        fills = agent.fills
        times = list(map(_AT, fills))
        if None in map(_TZINFO, times) or not all(map(operator.le, times, times[1:])):
            return False
        # `is`, not ==: a plain "SELL" string equals Side.SELL but the round trips test identity.
        if not all(type(f.side) is Side for f in fills):
            return False
        return (
            _positive_money(list(map(_QUANTITY, fills)), strictly=True)
            and _positive_money(list(map(_PRICE, fills)), strictly=True)
            and _positive_money(list(map(_FEE, fills)), strictly=False)
        )
    except (AttributeError, TypeError, ArithmeticError, ValueError):
        return False


def _looks_valid(agent: AgentInputs) -> bool:
    """Cheap whole-list checks; False (never an exception) when anything may be wrong."""
    try:
        times = list(map(_AT, agent.marks))
        if None in map(_TZINFO, times) or not all(map(operator.lt, times, times[1:])):
            return False
        if not _positive_money([*map(_EQUITY, agent.marks), *map(_CASH, agent.marks)], strictly=False):
            return False
        decisions = agent.decisions
        times = list(map(_AT, decisions))
        if None in map(_TZINFO, times) or not all(map(operator.le, times, times[1:])):
            return False
        if any(map(operator.lt, map(_ORDERS, decisions), map(len, map(_REJECTIONS, decisions)))):
            return False
        if not _positive_money([c for c in map(_COST, decisions) if c is not None], strictly=False):
            return False
        confidences = [c for c in map(_CONFIDENCE, decisions) if c is not None]
        if confidences and not (math.isfinite(sum(confidences)) and min(confidences) >= 0 and max(confidences) <= 1):
            return False
        latencies = [v for v in map(_LATENCY, decisions) if v is not None]
        return not latencies or (math.isfinite(sum(latencies)) and min(latencies) >= 0)
    except (AttributeError, TypeError, ArithmeticError, ValueError):
        return False


def _raise_first_problem(agent: AgentInputs) -> None:
    """Walk marks and decisions one by one and raise for the first problem found."""
    who = f"agent {agent.agent_id} ({agent.name})"
    previous: datetime | None = None
    for i, mark in enumerate(agent.marks):
        _check_time(who, f"equity mark {i}", mark.at)
        if previous is not None and mark.at <= previous:
            raise ValueError(
                f"{who}: equity marks must be strictly ascending in time; mark {i} at {mark.at.isoformat()} "
                f"does not follow {previous.isoformat()}"
            )
        previous = mark.at
        _check_money(who, f"equity of mark {i}", mark.equity)
        _check_money(who, f"cash of mark {i}", mark.cash)
    previous = None
    for i, decision in enumerate(agent.decisions):
        _check_time(who, f"decision {i}", decision.at)
        if previous is not None and decision.at < previous:
            raise ValueError(f"{who}: decisions must be in time order; decision {i} at {decision.at.isoformat()}")
        previous = decision.at
        if decision.orders < len(decision.rejection_reasons):
            raise ValueError(
                f"{who}: decision {i} rejects {len(decision.rejection_reasons)} orders but asked for only "
                f"{decision.orders}"
            )
        if decision.cost_usd is not None:
            _check_money(who, f"cost of decision {i}", decision.cost_usd)
        for name, value in (("confidence", decision.confidence), ("latency_ms", decision.latency_ms)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{who}: decision {i} has a non-finite {name} {value!r}")
        if decision.confidence is not None and not 0.0 <= decision.confidence <= 1.0:
            raise ValueError(f"{who}: decision {i} states confidence {decision.confidence}, outside [0, 1]")
        if decision.latency_ms is not None and decision.latency_ms < 0:
            raise ValueError(f"{who}: decision {i} has a negative latency {decision.latency_ms}")


def _raise_first_fill_problem(agent: AgentInputs) -> None:
    """Fills are few (one per executed order): always checked one by one."""
    who = f"agent {agent.agent_id} ({agent.name})"
    previous = None
    for i, fill in enumerate(agent.fills):
        _check_time(who, f"fill {i}", fill.at)
        if previous is not None and fill.at < previous:
            raise ValueError(f"{who}: fills must be in time order; fill {i} at {fill.at.isoformat()} is earlier")
        previous = fill.at
        if type(fill.side) is not Side:
            raise ValueError(f"{who}: fill {i} has side {fill.side!r}, not a Side")
        _check_money(who, f"quantity of fill {i}", fill.quantity, positive=True)
        _check_money(who, f"price of fill {i}", fill.price, positive=True)
        _check_money(who, f"fee of fill {i}", fill.fee)
