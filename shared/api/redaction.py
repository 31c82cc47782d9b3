"""What the public decisions view says about a HOLD: a stable code and a message of our own words.

The stored `hold_reason` (and the `HOLD: ...` reasoning built from it) can carry a provider's error body or an
exception's text, which may echo a URL, a server name or part of a key. That raw text stays in the database
and the logs for operators; `GET /api/agents/{id}/decisions` serves only the classification below.
"""

from __future__ import annotations

from typing import NamedTuple


class PublicHold(NamedTuple):
    code: str
    message: str


# First match wins: (how the stored reason starts, the public classification).
_CLASSES: tuple[tuple[tuple[str, ...], PublicHold], ...] = (
    (("rate limited",), PublicHold("rate_limited", "The model provider asked us to slow down.")),
    (("circuit open",), PublicHold("circuit_open", "The model provider failed repeatedly; calls are paused.")),
    (("timeout",), PublicHold("timeout", "The agent did not answer in time.")),
    (("invalid output", "invalid decision"), PublicHold("invalid_output", "The agent's answer could not be used.")),
    (("provider error",), PublicHold("provider_error", "The model provider returned an error.")),
    (("ML ", "cannot build the ML request"), PublicHold("ml_service_error", "The ML service could not decide.")),
    (("error:",), PublicHold("agent_error", "The agent failed unexpectedly.")),
)
OTHER = PublicHold("unavailable", "The agent could not decide this cycle.")


def classify_hold(raw_reason: str) -> PublicHold:
    for prefixes, public in _CLASSES:
        if raw_reason.startswith(prefixes):
            return public
    return OTHER


def public_reasoning(reasoning: str, hold: PublicHold | None) -> str:
    """A HOLD's reasoning written from its reason is replaced; a model's own reasoning is kept."""
    if hold is not None and reasoning.startswith("HOLD:"):
        return f"HOLD: {hold.message}"
    return reasoning
