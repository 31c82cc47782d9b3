"""The built dashboard (`web/dist`) served beside the API on one origin, as the local race does.

`/api/...` always goes to the API (the dashboard can never shadow it); any other path is a file of the build,
or `index.html` for the dashboard's own routes (`/agents/3`), so deep links and reloads work.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import PROJECT_ROOT

WEB_DIST = PROJECT_ROOT / "web" / "dist"
API_PREFIX = "/api"


class SinglePageApp(StaticFiles):
    """Static files with `index.html` for unknown paths; hashed assets are cached for good, the page never."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith("assets/"):
                # Answered here: outside the API there is no exception middleware to turn it into a response.
                return PlainTextResponse("Not Found", status_code=exc.status_code)
            response = await super().get_response("index.html", scope)
        if path.startswith("assets/") and response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def dashboard_available(dist: Path = WEB_DIST) -> bool:
    return (dist / "index.html").is_file()


def with_dashboard(api: ASGIApp, dist: Path = WEB_DIST) -> ASGIApp:
    """One ASGI app: the API under /api, the dashboard everywhere else."""
    site = SinglePageApp(directory=dist, html=True)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await api(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
