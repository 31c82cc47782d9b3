"""Keys out of a vendor's error text: some providers echo what they were sent (a 401 that repeats the key,
whole or masked), and that text goes into exceptions, logs and stored decisions.

`scrub_echo(text, request)` masks every run of 8 or more characters of any credential the request carried
(authorization-like headers, key-like query parameters), so a partial echo is masked too.
"""

from __future__ import annotations

import re

import httpx

WINDOW = 8
MASK = "[redacted]"
_CREDENTIAL_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|x-cg-(demo|pro)-api-key", re.IGNORECASE)
_CREDENTIAL_PARAM = re.compile(r"key|token|secret|sig", re.IGNORECASE)


def credentials_of(request: httpx.Request) -> list[str]:
    values = [v for k, v in request.headers.items() if _CREDENTIAL_HEADER.search(k)]
    values += [v for k, v in request.url.params.multi_items() if _CREDENTIAL_PARAM.search(k)]
    tokens = [part for value in values for part in value.split()]  # "Bearer sk-..." -> the token itself
    return [token for token in tokens if len(token) >= WINDOW and token.lower() != "bearer"]


def scrub(text: str, secrets: list[str]) -> str:
    windows = {secret[i : i + WINDOW] for secret in secrets for i in range(len(secret) - WINDOW + 1)}
    if not windows or not text:
        return text
    pattern = re.compile("|".join(re.escape(w) for w in sorted(windows, key=len, reverse=True)))
    masked = [False] * len(text)
    position = 0
    while (match := pattern.search(text, position)) is not None:
        for i in range(match.start(), match.end()):
            masked[i] = True
        position = match.start() + 1  # overlapping windows: a longer echo is masked end to end
    out, i = [], 0
    while i < len(text):
        if masked[i]:
            while i < len(text) and masked[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def scrub_echo(text: str, response: httpx.Response) -> str:
    """`text` (from `response`) with whatever credential its request sent masked."""
    try:
        request = response.request
    except RuntimeError:  # a response built by hand, never sent
        return text
    return scrub(text, credentials_of(request))
