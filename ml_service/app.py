"""The ML decision service: `uvicorn ml_service.app:create_app --factory` (FastAPI + PyTorch).

Routes: `POST /v1/decisions` (API key + Idempotency-Key), `GET /health/live`, `GET /health/ready`, `GET /metrics`.
The model is loaded once, in the lifespan, never at import; `shared.contracts` is the only code shared with the
Functions app.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml_service.config import ServiceSettings
from ml_service.idempotency import (
    IdempotencyCoordinator,
    KeyConflictError,
    RedisStore,
    StillRunningError,
    StoredResponse,
)
from ml_service.metrics import MetricsMiddleware, ServiceMetrics
from ml_service.model import ModelBundle, load_bundle
from ml_service.policy import Thresholds, plan_orders
from shared.contracts.ml_decisions import (
    API_KEY_HEADER,
    DECISIONS_PATH,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    IDEMPOTENT_REPLAY_HEADER,
    LIVE_PATH,
    METRICS_PATH,
    READY_PATH,
    DecisionRequest,
    DecisionResponse,
    ErrorBody,
)

log = logging.getLogger("ml_service")
JSON = "application/json"


class ServiceError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> bytes:
        return (
            ErrorBody.model_validate({"error": {"code": self.code, "message": self.message}}).model_dump_json().encode()
        )


@dataclass
class Runtime:
    """What the lifespan builds once: the model on its device, the idempotency coordinator, the key."""

    settings: ServiceSettings
    bundle: ModelBundle
    coordinator: IdempotencyCoordinator
    metrics: ServiceMetrics
    api_key: bytes
    thresholds: Thresholds


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceError(503, "not_ready", "the model is not loaded yet")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def create_app(settings: ServiceSettings | None = None, *, bundle: ModelBundle | None = None) -> FastAPI:
    """Build the app; the model and the Redis client are created at startup (lifespan), not here."""
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or ServiceSettings()
        logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        api_key = config.require_api_key().encode()
        torch.set_num_threads(config.torch_threads)
        loaded = bundle or load_bundle(config.artifact_dir, device=config.device)
        primary = (
            RedisStore(config.redis_url.get_secret_value(), timeout_s=config.redis_timeout_seconds)
            if config.redis_url
            else None
        )
        coordinator = IdempotencyCoordinator(
            primary,
            ttl_s=config.idempotency_ttl_seconds,
            lock_ttl_s=config.lock_ttl_seconds,
            retry_primary_s=config.redis_retry_seconds,
        )
        await coordinator.check()
        meta = loaded.metadata
        thresholds = Thresholds(meta.buy_above, meta.sell_below, config.max_buys_per_decision)
        app.state.runtime = Runtime(config, loaded, coordinator, metrics, api_key, thresholds)
        metrics.model_info.labels(loaded.version, str(loaded.device)).set(1)
        log.info("model %s on %s; idempotency: %s", loaded.version, loaded.device, coordinator.describe())
        try:
            yield
        finally:
            app.state.runtime = None
            await coordinator.close()

    app = FastAPI(title="AI Trading Race ML service", version="1", lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.metrics = metrics
    _install_error_handlers(app)

    @app.get(LIVE_PATH, tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(READY_PATH, tags=["health"])
    async def ready(request: Request) -> JSONResponse:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            return JSONResponse({"status": "not_ready", "model": {"loaded": False}}, status_code=503)
        coordinator = runtime.coordinator
        await coordinator.check()
        runtime.metrics.degraded.set(1 if coordinator.mode == "degraded" else 0)
        return JSONResponse(
            {
                "status": "degraded" if coordinator.mode == "degraded" else "ready",
                "model": {"loaded": True, "version": runtime.bundle.version, "device": str(runtime.bundle.device)},
                "idempotency": {"store": coordinator.mode, "detail": coordinator.describe()},
            }
        )

    @app.get(METRICS_PATH, tags=["health"])
    async def prometheus(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            metrics.degraded.set(1 if runtime.coordinator.mode == "degraded" else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        DECISIONS_PATH,
        tags=["decisions"],
        response_model=None,
        responses={
            200: {"model": DecisionResponse},
            400: {"model": ErrorBody},
            401: {"model": ErrorBody},
            413: {"model": ErrorBody},
            422: {"model": ErrorBody},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/DecisionRequest"}}},
            },
            "parameters": [
                {"name": IDEMPOTENCY_KEY_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": API_KEY_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
            ],
        },
    )
    async def decide(request: Request, runtime: RuntimeDep) -> Response:
        _authorise(request, runtime.api_key)
        key = _idempotency_key(request)
        body = await _read_body(request, runtime.settings.max_body_bytes)
        fingerprint = hashlib.sha256(b"POST " + DECISIONS_PATH.encode() + b"\n" + body).hexdigest()
        try:
            result = await runtime.coordinator.execute(key, fingerprint, lambda: _compute(runtime, body, fingerprint))
        except KeyConflictError:
            runtime.metrics.idempotency.labels("conflict").inc()
            raise ServiceError(
                422,
                "idempotency_key_reused",
                f"{IDEMPOTENCY_KEY_HEADER} {key!r} was already used with a different body",
            ) from None
        except StillRunningError:
            raise ServiceError(
                409, "request_in_progress", f"a request with {IDEMPOTENCY_KEY_HEADER} {key!r} is still running; retry"
            ) from None
        runtime.metrics.idempotency.labels(result.outcome).inc()
        stored = result.response
        headers = {IDEMPOTENT_REPLAY_HEADER: "true" if result.replayed else "false"}
        return Response(stored.body, status_code=stored.status_code, media_type=stored.media_type, headers=headers)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _compute(runtime: Runtime, body: bytes, fingerprint: str) -> StoredResponse:
    # Parsing and inference are CPU-bound: off the event loop, which keeps serving health checks, duplicates
    # and the idempotency lock's renewal meanwhile.
    return await asyncio.to_thread(_compute_now, runtime, body, fingerprint)


def _compute_now(runtime: Runtime, body: bytes, fingerprint: str) -> StoredResponse:
    try:
        request = DecisionRequest.model_validate_json(body)
        _check_against_model(request, runtime.bundle)
    except ValidationError as exc:
        error = _validation_error(exc)
        return StoredResponse(fingerprint, error.status, JSON, error.body())
    except ServiceError as error:
        return StoredResponse(fingerprint, error.status, JSON, error.body())
    needed = runtime.bundle.candles_needed
    started = time.perf_counter()
    windows = torch.tensor(
        [[(c.open, c.high, c.low, c.close, c.volume) for c in asset.candles[-needed:]] for asset in request.assets],
        dtype=torch.float64,
    )
    predictions = runtime.bundle.predict(windows)
    runtime.metrics.inference.observe(time.perf_counter() - started)
    plan = plan_orders(
        request, dict(zip((a.symbol for a in request.assets), predictions, strict=True)), runtime.thresholds
    )
    response = DecisionResponse(
        orders=plan.orders,
        reasoning=plan.reasoning,
        confidence=plan.confidence,
        model_version=runtime.bundle.version,
        signals=plan.signals,
    )
    return StoredResponse(fingerprint, 200, JSON, response.model_dump_json().encode())


def _check_against_model(request: DecisionRequest, bundle: ModelBundle) -> None:
    meta = bundle.metadata
    if request.interval != meta.interval:
        raise ServiceError(
            422, "unsupported_interval", f"the model serves {meta.interval} candles, not {request.interval}"
        )
    unknown = sorted(a.symbol for a in request.assets if a.symbol not in meta.symbols)
    if unknown:
        raise ServiceError(422, "unknown_asset", f"unknown assets {unknown}: the model knows {', '.join(meta.symbols)}")
    short = {a.symbol: len(a.candles) for a in request.assets if len(a.candles) < bundle.candles_needed}
    if short:
        counts = ", ".join(f"{s} has {n}" for s, n in sorted(short.items()))
        raise ServiceError(
            422, "too_few_candles", f"the model needs at least {bundle.candles_needed} candles per asset: {counts}"
        )


def _validation_error(exc: ValidationError) -> ServiceError:
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ServiceError(400, "invalid_json", f"the body is not valid JSON: {errors[0]['msg']}")
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return ServiceError(422, "invalid_request", "; ".join(parts) + more)


def _authorise(request: Request, expected: bytes) -> None:
    provided = request.headers.get(API_KEY_HEADER, "").encode()
    # Constant time whatever the input: never leak how much of the key matched.
    if not provided or not hmac.compare_digest(provided, expected):
        raise ServiceError(401, "unauthorized", f"missing or wrong {API_KEY_HEADER} header")


def _idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if not key:
        raise ServiceError(
            400, "missing_idempotency_key", f"POST {DECISIONS_PATH} needs an {IDEMPOTENCY_KEY_HEADER} header"
        )
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise ServiceError(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_KEY_HEADER} must be 8-200 characters of A-Z a-z 0-9 . _ : + -",
        )
    return key


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ServiceError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _install_error_handlers(app: FastAPI) -> None:
    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return Response(exc.body(), status_code=exc.status, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return Response(
            ServiceError(exc.status_code, "http_error", str(exc.detail)).body(), exc.status_code, media_type=JSON
        )

    async def request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return Response(ServiceError(422, "invalid_request", str(exc.errors()[:3])).body(), 422, media_type=JSON)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_validation)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        request_schema = DecisionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(request_schema.pop("$defs", {}))
        components["DecisionRequest"] = request_schema
        app.openapi_schema = schema
    return app.openapi_schema
