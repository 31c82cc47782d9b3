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
    _raise_first_fill_problem(agent)


def _looks_valid(agent: AgentInputs) -> bool:
    """Cheap whole-list checks; False (never an exception) when anything may be wrong."""
    try:
        times = [m.at for m in agent.marks]
        if None in map(_TZINFO, times) or not all(map(operator.lt, times, times[1:])):
            return False
        money = [m.equity for m in agent.marks] + [m.cash for m in agent.marks]
        # Decimal sums raise on sNaN or inf - inf and carry a quiet NaN; min() raises comparing a NaN.
        if money and (not sum(money, Decimal(0)).is_finite() or min(money) < 0):
            return False
        decisions = agent.decisions
        times = [d.at for d in decisions]
        if None in map(_TZINFO, times) or not all(map(operator.le, times, times[1:])):
            return False
        if any(d.orders < len(d.rejection_reasons) for d in decisions):
            return False
        costs = [d.cost_usd for d in decisions if d.cost_usd is not None]
        if costs and (not sum(costs, Decimal(0)).is_finite() or min(costs) < 0):
            return False
        confidences = [d.confidence for d in decisions if d.confidence is not None]
        if confidences and not (math.isfinite(sum(confidences)) and min(confidences) >= 0 and max(confidences) <= 1):
            return False
        latencies = [d.latency_ms for d in decisions if d.latency_ms is not None]
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
        if not isinstance(fill.side, Side):
            raise ValueError(f"{who}: fill {i} has side {fill.side!r}, not a Side")
        _check_money(who, f"quantity of fill {i}", fill.quantity, positive=True)
        _check_money(who, f"price of fill {i}", fill.price, positive=True)
        _check_money(who, f"fee of fill {i}", fill.fee)
