"""Telemetry: Application Insights through `azure-monitor-opentelemetry`, and the race's custom metrics.

* `configure_telemetry()` runs once, from `bootstrap()` (the first invocation), never at import: with
  `APPLICATIONINSIGHTS_CONNECTION_STRING` set it calls `configure_azure_monitor` (traces, logs and metrics
  exported to Application Insights); without it nothing is exported and the metric calls below are no-ops.
* Log records carry the correlation ids of `shared.correlation` (invocation, cycle, agent) as attributes, which
  the exporter sends as custom dimensions.
* `RaceMetrics` records through the OpenTelemetry metrics API only (opentelemetry-api), so it costs nothing
  when no SDK is configured, and tests give it a meter of an in-memory reader.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from shared.adapters.identity import make_credential, running_in_azure
from shared.correlation import install_log_record_factory
from shared.domain.model import Agent, AgentDecision

logger = logging.getLogger(__name__)

METER_NAME = "ai_trading_race"
LLM_PROVIDERS = frozenset({"llama", "openai", "azure_openai"})

_configured: bool | None = None
_lock = threading.Lock()


def configure_telemetry(connection_string: str | None, *, configure: Any = None) -> bool:
    """Export to Application Insights when `connection_string` is set. Once per process; returns whether
    telemetry is exported. `configure` replaces `configure_azure_monitor` in tests."""
    global _configured
    with _lock:
        install_log_record_factory()
        if _configured is not None:
            return _configured
        if not connection_string:
            _configured = False
            return False
        if configure is None:
            from azure.monitor.opentelemetry import configure_azure_monitor as configure
        # logger_name: export the app's own logs (not every library's debug chatter); the Functions host
        # already records requests and dependencies of the invocation itself.
        options: dict[str, Any] = {}
        if running_in_azure(os.environ):
            # infra/ turns on Entra-only ingestion for Application Insights: the exporter must sign in with the
            # app's managed identity, or every item it sends is rejected.
            options["credential"] = make_credential()
        configure(connection_string=connection_string, logger_name="shared", enable_live_metrics=False, **options)
        _configured = True
        logger.info("telemetry: exporting to Application Insights")
        return True


def reset_for_tests() -> None:
    global _configured
    with _lock:
        _configured = None


def hold_reason_category(decision: AgentDecision) -> str:
    """A bounded label for a HOLD (the reason text itself is unbounded: it names timeouts, errors, ...)."""
    reason = (decision.hold_reason or "").lower()
    if not reason:
        return "voluntary"
    for needle, category in (
        ("circuit open", "circuit_open"),
        ("rate limit", "rate_limited"),
        ("timeout", "timeout"),
        ("no answer within", "timeout"),
        ("invalid", "invalid_response"),
        ("cannot parse", "invalid_response"),
        ("unknown provider", "unavailable"),
        ("cannot build", "unavailable"),
        ("not set", "unavailable"),
        ("no api key", "unavailable"),
        ("error", "error"),
        ("failed", "error"),
    ):
        if needle in reason:
            return category
    return "other"


class RaceMetrics:
    """The `CycleMetrics` port on OpenTelemetry: decisions, HOLD fallbacks by reason, trades, model latency,
    tokens, cost, and ML service cache hits (answers replayed by its idempotency store)."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter(METER_NAME)
        self.decisions = meter.create_counter("race.decisions", unit="{decision}", description="Recorded decisions")
        self.holds = meter.create_counter("race.holds", unit="{decision}", description="HOLD decisions by reason")
        self.trades = meter.create_counter("race.trades", unit="{trade}", description="Executed trades")
        self.latency = meter.create_histogram("race.model.latency", unit="ms", description="Model call latency")
        self.tokens = meter.create_counter("race.llm.tokens", unit="{token}", description="LLM tokens used")
        self.cost = meter.create_counter("race.llm.cost", unit="USD", description="Estimated LLM cost")
        self.ml_cache_hits = meter.create_counter(
            "race.ml.cache_hits", unit="{response}", description="ML service answers replayed from its store"
        )
        self.market_dropped = meter.create_counter(
            "race.market_data.dropped", unit="{row}", description="Market data rows or candles not used"
        )
        self.market_unusable = meter.create_counter(
            "race.market_data.unusable", unit="{response}", description="Provider answers with no usable candle"
        )

    def decision_recorded(self, agent: Agent, decision: AgentDecision, *, trades: int) -> None:
        attributes: Mapping[str, str] = {"provider": agent.provider, "model": agent.model or ""}
        outcome = "orders" if decision.orders else "hold"
        self.decisions.add(1, {**attributes, "outcome": outcome})
        if not decision.orders:
            self.holds.add(1, {**attributes, "reason": hold_reason_category(decision)})
        if trades:
            self.trades.add(trades, attributes)
        if decision.latency_ms is not None:
            self.latency.record(decision.latency_ms, attributes)
        if agent.provider in LLM_PROVIDERS:
            for kind, count in (("prompt", decision.prompt_tokens), ("completion", decision.completion_tokens)):
                if count:
                    self.tokens.add(count, {**attributes, "kind": kind})
            if decision.cost_usd:
                self.cost.add(float(decision.cost_usd), attributes)

    def ml_cache_hit(self, agent_id: int) -> None:
        self.ml_cache_hits.add(1, {"provider": "custom_ml"})

    def candles_dropped(self, provider: str, symbol: str, count: int) -> None:
        self.market_dropped.add(count, {"provider": provider, "symbol": symbol})

    def fetch_unusable(self, provider: str, symbol: str) -> None:
        self.market_unusable.add(1, {"provider": provider, "symbol": symbol})


_metrics: RaceMetrics | None = None


def race_metrics() -> RaceMetrics:
    """The process-wide instruments (on the global meter provider, set by `configure_azure_monitor`)."""
    global _metrics
    if _metrics is None:
        _metrics = RaceMetrics()
    return _metrics
