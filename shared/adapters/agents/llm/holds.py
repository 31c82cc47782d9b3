"""The `hold_reason` of an LLM agent's fallback HOLD: a short stable code, then a short message.

`code` is one of the `HOLD_*` values (what a cycle counts its HOLDs by, and telemetry's label); the message is
one line of plain text, at most `MAX_HOLD_MESSAGE_CHARS`: a provider's HTML error page or a model's rambling
answer stays in the recorded reasoning and raw response, never in the reason. `invalid output: no 'orders'
field`, `provider error: HTTP 503: Service Temporarily Unavailable`, `timeout`.
"""

from __future__ import annotations

import re

HOLD_RATE_LIMITED = "rate limited"
HOLD_CIRCUIT_OPEN = "circuit open"
HOLD_TIMEOUT = "timeout"
HOLD_INVALID_OUTPUT = "invalid output"
HOLD_PROVIDER_ERROR = "provider error"
HOLD_CODES = (HOLD_RATE_LIMITED, HOLD_CIRCUIT_OPEN, HOLD_TIMEOUT, HOLD_INVALID_OUTPUT, HOLD_PROVIDER_ERROR)
MAX_HOLD_MESSAGE_CHARS = 120

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


def hold_reason_text(code: str, message: str | None = None) -> str:
    """`code`, or `code: message` with the message reduced to one short line of plain text."""
    if code not in HOLD_CODES:
        raise ValueError(f"unknown HOLD code {code!r}")
    if not message:
        return code
    text = _SPACE.sub(" ", _TAG.sub(" ", message)).strip()
    if len(text) > MAX_HOLD_MESSAGE_CHARS:
        text = text[: MAX_HOLD_MESSAGE_CHARS - 1].rstrip() + "…"
    return f"{code}: {text}" if text else code
