"""Bounded audit text: what is stored of a model's prompt, raw response or reasoning.

A model may answer with megabytes (a runaway generation, a hostile endpoint). The record keeps an excerpt of
`MAX_STORED_CHARS` characters plus the full length and the SHA-256 of the whole text, so a stored answer can
still be matched against the provider's logs, and one answer can never bloat the database or a page of the API.
"""

from __future__ import annotations

import hashlib
import re

MAX_STORED_CHARS = 16_000  # a 400-token answer is ~2 kB; the prompt for 5 assets ~5 kB
_MARKER = re.compile(r"…\[truncated: \d+ characters in all, sha256 [0-9a-f]{64}\]\Z")
_MARKER_MAX = 120


def bounded_text(text: str | None, limit: int = MAX_STORED_CHARS) -> str | None:
    """`text` itself when it fits, else its first `limit` characters and a marker with its length and hash."""
    if text is None or len(text) <= limit:
        return text
    if len(text) <= limit + _MARKER_MAX and _MARKER.search(text):
        return text  # bounded already (by the client that received it): its length and hash are the original's
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:limit]}…[truncated: {len(text)} characters in all, sha256 {digest}]"
