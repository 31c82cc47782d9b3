"""What every outbound HTTP client shares (CoinGecko, the LLM providers, ml_service)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """certifi's CA bundle in one TLS context per process: loading it costs ~100 ms of CPU, which a client
    opened per decision or per run would otherwise pay every time (even for a plain-HTTP loopback call)."""
    import ssl

    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def public_url(url: str) -> str:
    """`url` without credentials or query (`user:pass@`, `?key=...`): what may be stored and shown."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
