"""`create_app`: the FastAPI app behind both the Functions HTTP trigger and the local uvicorn server.

Every route lives under `/api` because `AsgiFunctionApp` forwards the full path, including the host's
default `api` route prefix, and the local server serves the very same paths on port 7071.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.api.contract import HeadAsGetMiddleware, TrailingSlashMiddleware, settings_openapi
from shared.api.deps import ContainerProvider
from shared.api.errors import install_error_handlers
from shared.api.etag import NOT_MODIFIED_RESPONSES, ETagMiddleware
from shared.api.response_cache import RenderedResponseCache, response_cache_config
from shared.api.routes import admin, agents, equity, health, leaderboard, market, race, replay, statistics
from shared.api.schemas import ErrorPublic

logger = logging.getLogger(__name__)

API_PREFIX = "/api"

DESCRIPTION = """
Read-only views of the AI trading race (leaderboard, equity curves, trades, decisions with reasoning,
market data) plus key-protected admin triggers of the timer jobs.

* Money, prices, quantities and percentages are exact decimals sent as **strings** (`"100000.00000000"`).
* Times are ISO 8601 in UTC; query times need an explicit offset (`2024-01-02T00:00:00Z`).
* Errors are JSON: `{"error": {"code": "not_found", "message": "agent 7 not found"}}`.
"""


def create_app(container_provider: ContainerProvider) -> FastAPI:
    """Build the app. Cheap: the container (settings, database, clients) is resolved on the first request."""
    app = FastAPI(
        title="AI Trading Race API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by `_mount_docs` from local assets, never a CDN
        redoc_url=None,
        redirect_slashes=False,  # TrailingSlashMiddleware redirects, with a relative location
    )
    app.state.container_provider = container_provider
    # Every GET is revalidated by ETagMiddleware below, so the read routers document its 304 too.
    app.include_router(health.router, prefix=API_PREFIX, responses={**_error_responses(500), **NOT_MODIFIED_RESPONSES})
    read_responses = {**_error_responses(422, 500, 503), **NOT_MODIFIED_RESPONSES}
    for router in (race.router, leaderboard.router, agents.router, statistics.router, equity.router, market.router):
        app.include_router(router, prefix=API_PREFIX, responses=read_responses)
    app.include_router(admin.router, prefix=API_PREFIX, responses=_error_responses(422, 500, 503))
    app.include_router(replay.router, prefix=API_PREFIX, responses=_error_responses(500, 503))
    _mount_docs(app)
    install_error_handlers(app)
    # Polling clients (the dashboard) revalidate with If-None-Match: unchanged answers are bodiless 304s.
    app.add_middleware(ETagMiddleware, prefixes=(f"{API_PREFIX}/",))
    # Outside the ETags: a GET is rendered once per data version, then answered from memory (or a 304).
    app.add_middleware(
        RenderedResponseCache,
        config_provider=lambda: response_cache_config(container_provider()),
        prefixes=(f"{API_PREFIX}/",),
    )
    app.openapi = settings_openapi(app, lambda: container_provider().settings)  # type: ignore[method-assign]
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(TrailingSlashMiddleware)
    # Added last so it is outermost: error responses (401, 404, 500) carry CORS headers too.
    app.add_middleware(SettingsCorsMiddleware, origins_provider=lambda: _cors_origins(container_provider))
    return app


DOCS_ASSETS = f"{API_PREFIX}/docs/assets"


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /api/docs with its scripts and styles served from the installed bundle (works offline)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


_ERROR_DESCRIPTIONS = {
    401: "Missing or wrong admin key.",
    403: "Admin endpoints are disabled.",
    404: "Not found.",
    422: "Invalid input: `message` says what to fix, `details` lists each problem.",
    500: "Unexpected error (details are logged, never returned).",
    503: "The database or configuration is unavailable.",
}


def _error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for our error body (they replace FastAPI's default 422 schema, which we don't send)."""
    return {status: {"model": ErrorPublic, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses}


def _cors_origins(container_provider: ContainerProvider) -> list[str]:
    origins = container_provider().settings.api.cors_origin_list
    if "*" in origins:
        logger.warning("Api__CorsOrigins contains '*': ignored, list the dashboard origins explicitly")
    return [origin for origin in origins if origin != "*"]


class SettingsCorsMiddleware:
    """Starlette's CORSMiddleware with its allowed origins read from settings on first use.

    The origins live in settings, and settings are only read once a request arrives; if they cannot be read
    yet, the request goes through without CORS headers (the browser refuses it) and the next one retries.
    """

    def __init__(self, app: ASGIApp, origins_provider: Callable[[], list[str]]) -> None:
        self.app = app
        self.origins_provider = origins_provider
        self._cors: ASGIApp | None = None
        self._lock = threading.Lock()

    def _cors_app(self) -> ASGIApp | None:
        if self._cors is None:
            with self._lock:
                if self._cors is None:
                    try:
                        origins = self.origins_provider()
                    except Exception:
                        logger.exception("CORS origins unavailable: the settings could not be loaded")
                        return None
                    self._cors = CORSMiddleware(
                        self.app,
                        allow_origins=origins,
                        allow_methods=["GET", "POST", "OPTIONS"],
                        allow_headers=["Content-Type", "If-None-Match", "x-admin-key", "x-functions-key"],
                        expose_headers=["ETag", "x-request-id"],
                        max_age=600,
                    )
        return self._cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cors = self._cors_app() if scope["type"] == "http" else None
        await (cors or self.app)(scope, receive, send)
