"""What makes the served OpenAPI document tell the truth, and the HTTP details it promises.

* Caps and the candle interval come from settings, which are only read once a request arrives; the document
  is built on its first request too, so `settings_openapi` writes the configured values into it (parameters
  tagged with `SETTING` name the setting they follow).
* `HeadAsGetMiddleware`: HEAD on any GET route answers GET's status and headers without the body.
* `TrailingSlashMiddleware`: `/api/leaderboard/` redirects to `/api/leaderboard` with a relative `location`
  (Starlette builds an absolute one from the client's `Host` header).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings

logger = logging.getLogger(__name__)

SETTING = "x-setting"
"""Key of a parameter schema's extra naming the setting it follows: `{"x-setting": "max_page_size"}`."""

# What each tag means in the document: (JSON Schema keyword, value from settings).
_FROM_SETTINGS: dict[str, tuple[str, Callable[[Settings], Any]]] = {
    "max_page_size": ("maximum", lambda s: s.api.max_page_size),
    "max_equity_points": ("maximum", lambda s: s.api.max_equity_points),
    "max_candles": ("maximum", lambda s: s.api.max_candles),
    "interval": ("enum", lambda s: [s.market_data.interval]),
}


def default_settings_values() -> Settings:
    """Settings made of the defaults only: the document's values while the real ones cannot be read."""
    return Settings.model_construct()


def _apply(schema: dict[str, Any], settings: Settings) -> None:
    name = schema.pop(SETTING, None)
    if name is None:
        return
    keyword, value_of = _FROM_SETTINGS[name]
    value = value_of(settings)
    # `int | None` parameters are an anyOf with null: the bound belongs to the non-null branch.
    targets = [s for s in schema.get("anyOf", []) if s.get("type") != "null"] or [schema]
    for target in targets:
        target[keyword] = value
        if keyword == "enum" and "default" in schema and schema["default"] not in value:
            schema["default"] = value[0]


def settings_openapi(app: FastAPI, settings_provider: Callable[[], Settings]) -> Callable[[], dict[str, Any]]:
    """A replacement of `app.openapi` whose document carries the caps and enums of the running settings."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            try:
                settings = settings_provider()
            except Exception:
                logger.warning("OpenAPI document: settings unavailable, it shows the default caps")
                settings = default_settings_values()
                app.openapi_schema = None  # not cached: the next request retries with the real settings
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        _apply(parameter.get("schema", {}), settings)
            return document
        return app.openapi_schema

    return openapi


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


class TrailingSlashMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if len(path) > 1 and path.endswith("/"):
            location = "/" + path.strip("/")  # never "//host": a scheme-relative location would leave the site
            query = scope.get("query_string", b"").decode("latin-1")
            response = RedirectResponse(location + (f"?{query}" if query else ""), status_code=307)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
