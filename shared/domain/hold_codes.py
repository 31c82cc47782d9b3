"""Stable codes for why an agent fell back to a HOLD, read from the stored `hold_reason`.

One classification for everyone who counts HOLDs: the public decisions view (`shared.api.redaction`, which
adds messages in our own words) and the discipline statistics (share of fallback HOLDs by reason, and the
share of decisions whose answer could not be parsed: `INVALID_OUTPUT`).
"""

from __future__ import annotations

RATE_LIMITED = "rate_limited"
CIRCUIT_OPEN = "circuit_open"
TIMEOUT = "timeout"
INVALID_OUTPUT = "invalid_output"
PROVIDER_ERROR = "provider_error"
ML_SERVICE_ERROR = "ml_service_error"
AGENT_ERROR = "agent_error"
UNAVAILABLE = "unavailable"

# First match wins: (how the stored reason starts, its code). The prefixes are what the agents write
# (`shared.adapters.agents.llm.holds`, the ML client, the cycle's guard).
_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("rate limited",), RATE_LIMITED),
    (("circuit open",), CIRCUIT_OPEN),
    (("timeout",), TIMEOUT),
    (("invalid output", "invalid decision"), INVALID_OUTPUT),
    (("provider error",), PROVIDER_ERROR),
    (("ML ", "cannot build the ML request"), ML_SERVICE_ERROR),
    (("error:",), AGENT_ERROR),
)
HOLD_CODES: tuple[str, ...] = (*(code for _, code in _PREFIXES), UNAVAILABLE)


def hold_code(raw_reason: str) -> str:
    """The code of a stored fallback-HOLD reason; `UNAVAILABLE` when no known prefix matches."""
    for prefixes, code in _PREFIXES:
        if raw_reason.startswith(prefixes):
            return code
    return UNAVAILABLE
