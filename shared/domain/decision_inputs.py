"""What a decision was made from, besides the snapshot its hash names: enough to rerun it exactly.

A cycle shows each agent a context (`AgentContext`): the frozen snapshot, the agent's portfolio before the
decision, the rules of the race, and the agent itself with its model's settings. The snapshot is identified by
its sha256 and rebuilt from the stored candles (`symbols`, `interval` and `candles` say which rows); the rest
is kept here, as exact JSON (decimals as strings), with every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.model import Portfolio, Position
from shared.domain.money import to_decimal
from shared.domain.rules import RaceRules

INPUTS_VERSION = 1


class InputsFormatError(ValueError):
    """Stored replay inputs that cannot be read back (an unknown version, a missing or malformed field)."""


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """The context one decision was made in, minus the snapshot's candles.

    `candles` is the longest symbol's number of candles in the snapshot: asking the store for that many per
    symbol, closed by the cycle time, returns the snapshot's rows again (a symbol with fewer had no more).
    `model` holds the agent's provider, model and params and the settings its client called the model with
    (temperature, max tokens, endpoint, prompt version, seed, ...): never a secret."""

    portfolio: Portfolio
    rules: RaceRules
    symbols: tuple[str, ...]
    interval: str
    candles: int
    model: Mapping[str, Any] = field(default_factory=dict)


def portfolio_to_json(portfolio: Portfolio) -> dict[str, Any]:
    return {
        "cash": str(portfolio.cash),
        "fees_paid": str(portfolio.fees_paid),
        "trade_count": portfolio.trade_count,
        "positions": {
            symbol: {"quantity": str(p.quantity), "avg_cost": str(p.avg_cost)}
            for symbol, p in sorted(portfolio.positions.items())
        },
    }


def portfolio_from_json(agent_id: int, data: Mapping[str, Any]) -> Portfolio:
    try:
        positions = {
            str(symbol): Position(to_decimal(p["quantity"]), to_decimal(p["avg_cost"]))
            for symbol, p in dict(data["positions"]).items()
        }
        return Portfolio(
            agent_id,
            to_decimal(data["cash"]),
            positions,
            fees_paid=to_decimal(data["fees_paid"]),
            trade_count=int(data["trade_count"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputsFormatError(f"stored portfolio cannot be read: {type(exc).__name__}: {exc}") from exc


def race_settings_to_json(inputs: DecisionInputs) -> dict[str, Any]:
    """The rules and the snapshot's window: what the race (not the agent) decided the context would be."""
    rules = inputs.rules
    return {
        "version": INPUTS_VERSION,
        "rules": {
            "starting_cash": str(rules.starting_cash),
            "fee_bps": str(rules.fee_bps),
            "slippage_bps": str(rules.slippage_bps),
            "min_notional_usd": str(rules.min_notional_usd),
            "max_position_fraction": str(rules.max_position_fraction),
            "max_orders_per_decision": rules.max_orders_per_decision,
        },
        "snapshot": {"symbols": list(inputs.symbols), "interval": inputs.interval, "candles": inputs.candles},
    }


def inputs_from_json(
    agent_id: int,
    *,
    portfolio: Mapping[str, Any],
    race_settings: Mapping[str, Any],
    model_settings: Mapping[str, Any],
) -> DecisionInputs:
    """The inputs stored by `portfolio_to_json` and `race_settings_to_json`; InputsFormatError if unreadable."""
    if race_settings.get("version") != INPUTS_VERSION:
        raise InputsFormatError(f"unknown replay inputs version {race_settings.get('version')!r}")
    try:
        rules_data, window = dict(race_settings["rules"]), dict(race_settings["snapshot"])
        rules = RaceRules(
            starting_cash=to_decimal(rules_data["starting_cash"]),
            fee_bps=to_decimal(rules_data["fee_bps"]),
            slippage_bps=to_decimal(rules_data["slippage_bps"]),
            min_notional_usd=to_decimal(rules_data["min_notional_usd"]),
            max_position_fraction=to_decimal(rules_data["max_position_fraction"]),
            max_orders_per_decision=int(rules_data["max_orders_per_decision"]),
        )
        symbols = tuple(str(symbol) for symbol in window["symbols"])
        interval, candles = str(window["interval"]), int(window["candles"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputsFormatError(f"stored race settings cannot be read: {type(exc).__name__}: {exc}") from exc
    if candles < 1 or not symbols:
        raise InputsFormatError("stored snapshot window is empty")
    return DecisionInputs(
        portfolio_from_json(agent_id, portfolio), rules, symbols, interval, candles, dict(model_settings)
    )
