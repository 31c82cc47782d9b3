"""Prometheus metrics (prometheus_client), one registry per app so several apps can live in one process."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.ml_decisions import DECISIONS_PATH, LIVE_PATH, METRICS_PATH, READY_PATH

KNOWN_ROUTES = frozenset({DECISIONS_PATH, LIVE_PATH, READY_PATH, METRICS_PATH})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ml_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram(
            "ml_request_duration_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.in_flight = Gauge("ml_requests_in_flight", "HTTP requests being served", registry=r)
        self.idempotency = Counter(
            "ml_idempotency",
            "Decisions by idempotency outcome (miss computed; hit/wait replayed)",
            ["outcome"],
            registry=r,
        )
        self.inference = Histogram(
            "ml_inference_duration_seconds", "Feature build + batched forward pass", buckets=LATENCY_BUCKETS, registry=r
        )
        self.degraded = Gauge("ml_idempotency_degraded", "1 while Redis is configured but unreachable", registry=r)
        self.model_info = Gauge("ml_model_info", "The model being served", ["version", "device"], registry=r)


class MetricsMiddleware:
    """Counts, times and gauges every HTTP request (pure ASGI: no buffering of the body)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in KNOWN_ROUTES else "other"
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, str(status)).inc()
