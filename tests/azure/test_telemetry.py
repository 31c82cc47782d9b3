"""Telemetry: configured once and only with a connection string; metrics on an in-memory reader; correlation
ids on every log record. No network: `configure_azure_monitor` is replaced by a recorder."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.adapters import telemetry
from shared.adapters.telemetry import RaceMetrics, configure_telemetry, hold_reason_category
from shared.correlation import correlated, install_log_record_factory
from shared.domain.model import Agent, AgentDecision, Order, Side


@pytest.fixture(autouse=True)
def _fresh_telemetry() -> Any:
    telemetry.reset_for_tests()
    yield
    telemetry.reset_for_tests()


def test_telemetry_is_configured_once_and_only_with_a_connection_string() -> None:
    calls: list[dict[str, Any]] = []

    assert configure_telemetry(None, configure=lambda **kw: calls.append(kw)) is False
    telemetry.reset_for_tests()
    assert configure_telemetry(
        "InstrumentationKey=00000000-0000-0000-0000-000000000000", configure=lambda **kw: calls.append(kw)
    )
    assert configure_telemetry("InstrumentationKey=other", configure=lambda **kw: calls.append(kw))

    assert len(calls) == 1
    assert calls[0]["connection_string"].startswith("InstrumentationKey=0000")
    assert calls[0]["logger_name"] == "shared"
    assert "credential" not in calls[0], "off Azure the connection string's key is enough"


def test_in_azure_the_exporter_signs_in_with_the_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    # Application Insights in infra/ accepts Entra-authenticated telemetry only.
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "instance-1")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    calls: list[dict[str, Any]] = []

    assert configure_telemetry("InstrumentationKey=0000", configure=lambda **kw: calls.append(kw))

    credential = calls[0]["credential"]
    assert type(credential).__name__ == "ManagedIdentityCredential"


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    points: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)
                    points.setdefault(metric.name, []).append((dict(point.attributes), value))
    return points


def test_decisions_holds_trades_latency_tokens_and_cost_are_recorded() -> None:
    reader = InMemoryMetricReader()
    metrics = RaceMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    llama = Agent(1, "Llama", "llama", "llama-3.3-70b-versatile")
    ml = Agent(2, "ML", "custom_ml", "lgbm-v1")
    buy = AgentDecision(
        orders=(Order("BTC", Side.BUY, quantity=Decimal("0.1")),),
        reasoning="up",
        latency_ms=850.0,
        prompt_tokens=1200,
        completion_tokens=80,
        cost_usd=Decimal("0.0012"),
    )

    metrics.decision_recorded(llama, buy, trades=1)
    metrics.decision_recorded(llama, AgentDecision.hold("timeout after 30s", latency_ms=30000.0), trades=0)
    metrics.decision_recorded(ml, AgentDecision.hold("ML service circuit open after 5 consecutive failures"), trades=0)
    metrics.decision_recorded(ml, AgentDecision(orders=(), reasoning="flat"), trades=0)
    metrics.ml_cache_hit(2)

    points = metric_points(reader)
    llama_attrs = {"provider": "llama", "model": "llama-3.3-70b-versatile"}
    assert sorted((p[0]["provider"], p[0]["outcome"], p[1]) for p in points["race.decisions"]) == [
        ("custom_ml", "hold", 2),
        ("llama", "hold", 1),
        ("llama", "orders", 1),
    ]
    assert sorted((p[0]["reason"], p[1]) for p in points["race.holds"]) == [
        ("circuit_open", 1),
        ("timeout", 1),
        ("voluntary", 1),
    ]
    assert points["race.trades"] == [(llama_attrs, 1)]
    assert sorted((p[0]["kind"], p[1]) for p in points["race.llm.tokens"]) == [("completion", 80), ("prompt", 1200)]
    assert points["race.llm.cost"] == [(llama_attrs, pytest.approx(0.0012))]
    [(_attrs, (count, total))] = [p for p in points["race.model.latency"] if p[0]["provider"] == "llama"]
    assert (count, total) == (2, 30850.0)
    assert points["race.ml.cache_hits"] == [({"provider": "custom_ml"}, 1)]


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("error: RuntimeError: boom", "error"),
        ("invalid decision: orders must be a tuple of Order", "invalid_response"),
        ("client-side rate limit: next slot in 12.0s", "rate_limited"),
        ("cannot build llama client for model 'x': Llama__ApiKey is not set", "unavailable"),
        ("something new", "other"),
    ],
)
def test_hold_reasons_get_a_bounded_category(reason: str, category: str) -> None:
    assert hold_reason_category(AgentDecision.hold(reason)) == category


def test_log_records_carry_the_correlation_ids(caplog: pytest.LogCaptureFixture) -> None:
    install_log_record_factory()
    log = logging.getLogger("shared.test")

    async def agent_task(agent_id: int) -> None:
        with correlated(agent_id=agent_id):
            await asyncio.sleep(0)
            log.warning("agent says hi")

    async def cycle() -> None:
        with correlated(invocation_id="inv-42", cycle_id="2024-03-01T12:00:00+00:00"):
            await asyncio.gather(agent_task(1), agent_task(2))

    with caplog.at_level(logging.INFO):
        asyncio.run(cycle())
        log.warning("outside")

    stamped = [(r.invocation_id, r.cycle_id, r.agent_id) for r in caplog.records]  # type: ignore[attr-defined]
    assert sorted(stamped[:2], key=str) == [
        ("inv-42", "2024-03-01T12:00:00+00:00", 1),
        ("inv-42", "2024-03-01T12:00:00+00:00", 2),
    ]
    assert stamped[2] == (None, None, None)


def test_market_data_rows_dropped_and_unusable_answers_are_counted() -> None:
    reader = InMemoryMetricReader()
    metrics = RaceMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"))

    metrics.candles_dropped("coingecko", "BTC", 3)
    metrics.candles_dropped("coingecko", "BTC", 2)
    metrics.fetch_unusable("coingecko", "ETH")

    points = metric_points(reader)
    assert points["race.market_data.dropped"] == [({"provider": "coingecko", "symbol": "BTC"}, 5)]
    assert points["race.market_data.unusable"] == [({"provider": "coingecko", "symbol": "ETH"}, 1)]
