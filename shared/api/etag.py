"""Conditional GETs for the API: an ETag on every successful GET and `304 Not Modified` when it still matches.

The dashboard polls every few seconds; when nothing has changed the answer is a 304 with no body, so an idle
dashboard costs a few hundred bytes a poll. `Cache-Control: no-cache` makes browsers revalidate (send
`If-None-Match`) on every request instead of serving a stale copy, with no code in the client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def entity_tag(body: bytes) -> str:
    """A weak validator (the same JSON may be compressed differently on the way) from the body's hash."""
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match list (or `*`)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    opaque = tag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == opaque for c in candidates)


class ETagMiddleware:
    """Buffers successful GET/HEAD responses under `prefixes` (small JSON documents), tags them, and answers
    304 to a matching If-None-Match. Other methods, statuses and streaming bodies go through untouched."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str] = ("/api/",), max_body_bytes: int = 8 << 20) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passthrough = False

        async def buffered_send(message: Message) -> None:
            nonlocal start, size, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                start = message
                headers = Headers(raw=message["headers"])
                if message["status"] != 200 or "etag" in headers:
                    passthrough = True
                    await send(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if message.get("more_body", False) and size <= self.max_body_bytes:
                    return
                assert start is not None
                body = b"".join(chunks)
                if message.get("more_body", False):  # too big to tag: send what we have and stream the rest
                    passthrough = True
                    await send(start)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    return
                await self._send_tagged(start, body, if_none_match, send)
            else:
                await send(message)

        await self.app(scope, receive, buffered_send)

    @staticmethod
    async def _send_tagged(start: Message, body: bytes, if_none_match: str | None, send: Send) -> None:
        tag = entity_tag(body)
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["ETag"] = tag
        headers.setdefault("Cache-Control", "no-cache")
        if etag_matches(if_none_match, tag):
            for name in ("content-length", "content-type"):
                if name in headers:
                    del headers[name]
            await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})


# Every GET under the middleware may answer 304: the read routers document it (app.py).
NOT_MODIFIED_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is still current (empty body)."}
}
