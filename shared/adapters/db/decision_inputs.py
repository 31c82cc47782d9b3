"""The decisions' replay inputs (shared.domain.decision_inputs) as the three JSON columns added by 0007."""

from __future__ import annotations

from typing import Any

from shared.domain.decision_inputs import DecisionInputs, portfolio_to_json, race_settings_to_json

NO_INPUTS: dict[str, Any] = {"portfolio_before": None, "model_settings": None, "race_settings": None}


def replay_input_values(inputs: DecisionInputs | None) -> dict[str, Any]:
    """The columns' values for a decision (NULLs for one made without a context, e.g. by hand in a test)."""
    if inputs is None:
        return NO_INPUTS
    return {
        "portfolio_before": portfolio_to_json(inputs.portfolio),
        "model_settings": dict(inputs.model),
        "race_settings": race_settings_to_json(inputs),
    }
