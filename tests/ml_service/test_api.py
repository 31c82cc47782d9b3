"""The service's HTTP behaviour with the in-memory idempotency store: decisions, auth, bad input, health, metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ml_service.app import create_app
from ml_service.data import CandleSeries
from shared.contracts.ml_decisions import DecisionResponse
from tests.ml_service.conftest import API_KEY, decision_body, encode, headers, new_key, serving, settings

pytestmark = pytest.mark.anyio


async def test_a_decision_covers_every_asset_in_one_answer(make_app: Any, series: dict[str, CandleSeries]) -> None:
    async with serving(make_app()) as client:
        response = await client.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(new_key()))

    assert response.status_code == 200, response.text
    assert response.headers["idempotent-replayed"] == "false"
    decision = DecisionResponse.model_validate_json(response.content)
    assert [s.symbol for s in decision.signals] == ["BNB", "BTC", "ETH", "SOL", "XRP"]
    assert all(0 <= s.prob_up <= 1 for s in decision.signals)
    assert decision.model_version.startswith("direction-mlp-")
    assert 0 <= decision.confidence <= 1
    assert "P(next candle up)" in decision.reasoning


async def test_a_retry_with_the_same_key_replays_the_first_response_byte_for_byte(
    make_app: Any, series: dict[str, CandleSeries]
) -> None:
    key, body = new_key(), encode(decision_body(series))
    async with serving(make_app()) as client:
        first = await client.post("/v1/decisions", content=body, headers=headers(key))
        second = await client.post("/v1/decisions", content=body, headers=headers(key))
        metrics = (await client.get("/metrics")).text

    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert 'ml_idempotency_total{outcome="miss"} 1.0' in metrics
    assert 'ml_idempotency_total{outcome="hit"} 1.0' in metrics


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"X-API-Key": ""}, 401, "unauthorized"),
        ({"X-API-Key": "wrong-key"}, 401, "unauthorized"),
        ({"X-API-Key": API_KEY + "x"}, 401, "unauthorized"),
    ],
)
async def test_decisions_need_the_api_key(
    make_app: Any, series: dict[str, CandleSeries], extra: dict[str, str], status: int, code: str
) -> None:
    async with serving(make_app()) as client:
        response = await client.post(
            "/v1/decisions", content=encode(decision_body(series)), headers=headers(new_key(), **extra)
        )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert API_KEY not in response.text


async def test_a_missing_or_malformed_idempotency_key_is_a_400(make_app: Any, series: dict[str, CandleSeries]) -> None:
    body = encode(decision_body(series))
    async with serving(make_app()) as client:
        missing = await client.post("/v1/decisions", content=body, headers=headers())
        malformed = await client.post("/v1/decisions", content=body, headers=headers("bad key with spaces"))
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "code": "missing_idempotency_key",
        "message": "POST /v1/decisions needs an Idempotency-Key header",
    }
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_idempotency_key"


async def test_the_same_key_with_a_different_body_is_a_422(make_app: Any, series: dict[str, CandleSeries]) -> None:
    key = new_key()
    async with serving(make_app()) as client:
        first = await client.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(key))
        other = await client.post(
            "/v1/decisions", content=encode(decision_body(series, end=2001)), headers=headers(key)
        )
    assert first.status_code == 200
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert key in other.json()["error"]["message"]


def _mutate(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(
    ("change", "status", "code", "message"),
    [
        (("assets.0.candles.3.close", float("nan")), 422, "invalid_request", "assets.0.candles.3.close"),
        (("assets.0.candles.3.volume", float("inf")), 422, "invalid_request", "finite number"),
        (("assets.1.candles", {"open": 1}), 422, "invalid_request", "assets.1.candles: Input should be a valid array"),
        (("assets.0.candles.2.open_time", "2024-03-01T00:00:00"), 422, "invalid_request", "timezone"),
        (("assets.0.candles.5.high", 1.0), 422, "invalid_request", "low <= open, close <= high"),
        (("assets.2.symbol", "DOGE"), 422, "unknown_asset", "unknown assets ['DOGE']"),
        (("assets.2.symbol", "btc"), 422, "invalid_request", "assets.2.symbol"),
        (("interval", "4h"), 422, "unsupported_interval", "the model serves 1h candles, not 4h"),
        (("portfolio.cash", -5), 422, "invalid_request", "portfolio.cash"),
        (("cycle_time", "2024-01-01T00:00:00Z"), 422, "invalid_request", "look-ahead"),
        (("surprise", 1), 422, "invalid_request", "surprise: Extra inputs are not permitted"),
    ],
)
async def test_bad_input_is_a_4xx_with_a_clear_message(
    make_app: Any, series: dict[str, CandleSeries], change: tuple[str, Any], status: int, code: str, message: str
) -> None:
    body = _mutate(decision_body(series), *change)
    async with serving(make_app()) as client:
        response = await client.post("/v1/decisions", content=json.dumps(body).encode(), headers=headers(new_key()))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert message in response.json()["error"]["message"]


async def test_too_few_candles_says_how_many_the_model_needs(make_app: Any, series: dict[str, CandleSeries]) -> None:
    body = decision_body(series, count=10)
    async with serving(make_app()) as client:
        response = await client.post("/v1/decisions", content=encode(body), headers=headers(new_key()))
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "too_few_candles",
        "message": "the model needs at least 25 candles per asset: BNB has 10, BTC has 10, ETH has 10, SOL has 10, "
        "XRP has 10",
    }


async def test_invalid_json_and_empty_bodies_are_rejected(make_app: Any) -> None:
    async with serving(make_app()) as client:
        broken = await client.post("/v1/decisions", content=b'{"agent_id": 1,', headers=headers(new_key()))
        empty = await client.post("/v1/decisions", content=b"", headers=headers(new_key()))
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"
    assert empty.status_code == 400


async def test_oversized_payloads_are_a_413_declared_or_streamed(make_app: Any) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1024

    async with serving(make_app(MlService__MaxBodyBytes=4096)) as client:
        declared = await client.post("/v1/decisions", content=b" " * 5000, headers=headers(new_key()))
        streamed = await client.post("/v1/decisions", content=chunks(), headers=headers(new_key()))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert declared.json()["error"] == {"code": "payload_too_large", "message": "the body exceeds 4096 bytes"}


async def test_a_rejected_request_is_not_stored_so_the_fixed_one_can_use_its_key(
    make_app: Any, series: dict[str, CandleSeries]
) -> None:
    key = new_key()
    bad = _mutate(decision_body(series), "assets.0.candles.3.close", -1)
    async with serving(make_app()) as client:
        rejected = await client.post("/v1/decisions", content=encode(bad), headers=headers(key))
        fixed = await client.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(key))
    assert rejected.status_code == 422
    assert fixed.status_code == 200
    assert fixed.headers["idempotent-replayed"] == "false"


async def test_health_and_metrics(make_app: Any, series: dict[str, CandleSeries]) -> None:
    async with serving(make_app()) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
        await client.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(new_key()))
        metrics = await client.get("/metrics")
    assert live.json() == {"status": "alive"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["model"]["loaded"] is True
    assert body["model"]["device"] == "cpu"
    assert body["idempotency"]["store"] == "memory"
    assert "Redis__ConnectionString is not set" in body["idempotency"]["detail"]
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in (
        'ml_requests_total{route="/v1/decisions",status="200"} 1.0',
        'ml_request_duration_seconds_count{route="/v1/decisions"} 1.0',
        "ml_requests_in_flight 1.0",  # the /metrics request itself
        'ml_idempotency_total{outcome="miss"} 1.0',
        "ml_inference_duration_seconds_count 1.0",
        "ml_model_info{",
    ):
        assert name in text, name


async def test_the_service_refuses_to_start_without_an_api_key(bundle: Any) -> None:
    app = create_app(settings().model_copy(update={"api_key": None}), bundle=bundle)
    with pytest.raises(ValueError, match="MlService__ApiKey is not set"):
        async with app.router.lifespan_context(app):
            pass


async def test_openapi_documents_the_contract(make_app: Any) -> None:
    async with serving(make_app()) as client:
        schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/decisions"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionRequest")
    assert {"DecisionRequest", "DecisionResponse", "CandleIn", "ErrorBody"} <= set(schema["components"]["schemas"])
    assert {p["name"] for p in operation["parameters"]} >= {"Idempotency-Key", "X-API-Key"}
