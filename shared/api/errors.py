"""One JSON error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Bad input is always a 4xx with a message that says what to fix; an unexpected failure is a 500 whose body
names nothing internal (the details go to the log, where Application Insights picks them up).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import correlation

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports to the caller as is: its message must be safe to show."""

    status_code = HTTPStatus.BAD_REQUEST
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class NotFoundError(ApiError):
    status_code = HTTPStatus.NOT_FOUND
    code = "not_found"


class InvalidRequestError(ApiError):
    """Input that parses but breaks a rule known only at run time (a limit from settings, start > end)."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "validation_error"


class UnauthorizedError(ApiError):
    status_code = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class ForbiddenError(ApiError):
    status_code = HTTPStatus.FORBIDDEN
    code = "forbidden"


class ServiceUnavailableError(ApiError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"


def error_body(code: str, message: str, details: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return {"error": error}


def _describe_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The raw pydantic errors echo the input back; keep only where and what, never the value itself.
    details = []
    for err in exc.errors():
        location = ".".join(str(part) for part in err.get("loc", ()))
        details.append({"location": location, "message": str(err.get("msg", "invalid value"))})
    return details


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _describe_validation_errors(exc)
    message = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "invalid request"
    return JSONResponse(error_body("validation_error", message, details), status_code=HTTPStatus.UNPROCESSABLE_ENTITY)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else status.phrase
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(UnhandledErrorMiddleware)


INTERNAL_ERROR_BODY = error_body("internal_error", "internal server error")


class UnhandledErrorMiddleware:
    """Turns any exception that escaped the routes into a logged, generic 500 JSON response.

    Starlette's own `Exception` handler re-raises after responding, which the Functions ASGI bridge turns
    into a failed invocation with no body; catching here keeps the JSON shape under every server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception as exc:
            # One line a failure, with an id the caller sees too (x-request-id); the traceback rides on the record
            # for telemetry and --verbose, and the local race's console leaves it out.
            request_id = correlation.invocation_id.get() or uuid.uuid4().hex[:12]
            logger.error(
                "request %s %s failed: %s [request %s]",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                request_id,
                exc_info=exc,
                extra={"request_id": request_id},
            )
            if response_started:
                raise  # the status line is gone already: nothing better to send than a broken response
            response = JSONResponse(
                INTERNAL_ERROR_BODY,
                status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
                headers={"x-request-id": request_id},
            )
            await response(scope, receive, send)
