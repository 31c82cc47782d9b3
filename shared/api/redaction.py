"""What the public decisions view says about a HOLD: a stable code and a message of our own words.

The stored `hold_reason` (and the `HOLD: ...` reasoning built from it) can carry a provider's error body or an
exception's text, which may echo a URL, a server name or part of a key. That raw text stays in the database
and the logs for operators; `GET /api/agents/{id}/decisions` serves only the classification below.
"""

from __future__ import annotations

from typing import NamedTuple

from shared.domain import hold_codes


class PublicHold(NamedTuple):
    code: str
    message: str


# The codes come from the domain's one classification (the statistics count HOLDs by the same codes).
_MESSAGES: dict[str, str] = {
    hold_codes.RATE_LIMITED: "The model provider asked us to slow down.",
    hold_codes.CIRCUIT_OPEN: "The model provider failed repeatedly; calls are paused.",
    hold_codes.TIMEOUT: "The agent did not answer in time.",
    hold_codes.INVALID_OUTPUT: "The agent's answer could not be used.",
    hold_codes.PROVIDER_ERROR: "The model provider returned an error.",
    hold_codes.ML_SERVICE_ERROR: "The ML service could not decide.",
    hold_codes.AGENT_ERROR: "The agent failed unexpectedly.",
    hold_codes.UNAVAILABLE: "The agent could not decide this cycle.",
}
OTHER = PublicHold(hold_codes.UNAVAILABLE, _MESSAGES[hold_codes.UNAVAILABLE])


def classify_hold(raw_reason: str) -> PublicHold:
    code = hold_codes.hold_code(raw_reason)
    return PublicHold(code, _MESSAGES[code])


def public_reasoning(reasoning: str, hold: PublicHold | None) -> str:
    """A HOLD's reasoning written from its reason is replaced; a model's own reasoning is kept."""
    if hold is not None and reasoning.startswith("HOLD:"):
        return f"HOLD: {hold.message}"
    return reasoning
