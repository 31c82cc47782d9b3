"""Idempotency against a real Redis server (TEST_REDIS_URL from scripts/with-services.sh; missing = failure):
miss, hit, replay after the TTL, concurrent duplicates across two replicas computed once, a key reused with
another body, and Redis down at start or dying mid-run (degraded, still answering)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

import ml_service.app as service_app
from ml_service.data import CandleSeries
from ml_service.idempotency import KEY_PREFIX, LOCK_PREFIX, MemoryStore, RedisStore, StoredResponse, redis_url
from tests.ml_service.conftest import RedisServer, decision_body, encode, free_port, headers, new_key, serving

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def counted_compute(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Counts real computations and makes each one slow enough for duplicates to overlap it."""
    calls: list[float] = []
    original = service_app._compute

    async def slow(runtime: Any, body: bytes, fingerprint: str) -> StoredResponse:
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.3)
        return await original(runtime, body, fingerprint)

    monkeypatch.setattr(service_app, "_compute", slow)
    return calls


async def test_miss_then_hit_stores_the_response_in_redis_for_an_hour(
    make_app: Any, series: dict[str, CandleSeries], redis_url: str
) -> None:
    key, body = new_key(), encode(decision_body(series))
    async with serving(make_app(Redis__ConnectionString=redis_url)) as client:
        ready = (await client.get("/health/ready")).json()
        first = await client.post("/v1/decisions", content=body, headers=headers(key))
        second = await client.post("/v1/decisions", content=body, headers=headers(key))
    assert ready["idempotency"] == {"store": "redis", "detail": "Redis"}
    assert (first.headers["idempotent-replayed"], second.headers["idempotent-replayed"]) == ("false", "true")
    assert second.content == first.content
    direct = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await direct.ttl(KEY_PREFIX + key)
        stored = StoredResponse.loads(await direct.get(KEY_PREFIX + key))
        assert await direct.exists(LOCK_PREFIX + key) == 0, "the lock is released after the computation"
    finally:
        await direct.aclose()
    assert 3590 <= ttl <= 3600
    assert stored.body == first.content
    assert stored.status_code == 200


async def test_a_replica_replays_what_another_replica_computed(
    make_app: Any, series: dict[str, CandleSeries], redis_url: str
) -> None:
    key, body = new_key(), encode(decision_body(series))
    async with serving(make_app(Redis__ConnectionString=redis_url)) as one:
        first = await one.post("/v1/decisions", content=body, headers=headers(key))
    async with serving(make_app(Redis__ConnectionString=redis_url)) as other:
        replay = await other.post("/v1/decisions", content=body, headers=headers(key))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content


async def test_after_the_ttl_the_key_is_forgotten_and_the_decision_computed_again(
    make_app: Any, series: dict[str, CandleSeries], redis_url: str, counted_compute: list[float]
) -> None:
    key, body = new_key(), encode(decision_body(series))
    async with serving(make_app(Redis__ConnectionString=redis_url, MlService__IdempotencyTtlSeconds=1)) as client:
        first = await client.post("/v1/decisions", content=body, headers=headers(key))
        within = await client.post("/v1/decisions", content=body, headers=headers(key))
        await asyncio.sleep(1.2)
        after = await client.post("/v1/decisions", content=body, headers=headers(key))
        replay = await client.post("/v1/decisions", content=body, headers=headers(key))
    assert [r.headers["idempotent-replayed"] for r in (first, within, after, replay)] == [
        "false",
        "true",
        "false",
        "true",
    ]
    assert len(counted_compute) == 2
    assert after.content == first.content  # same model, same input: the recomputed answer is the same


async def test_concurrent_duplicates_on_two_replicas_compute_once(
    make_app: Any, series: dict[str, CandleSeries], redis_url: str, counted_compute: list[float]
) -> None:
    key, body = new_key(), encode(decision_body(series))
    async with (
        serving(make_app(Redis__ConnectionString=redis_url)) as one,
        serving(make_app(Redis__ConnectionString=redis_url)) as two,
    ):
        responses = await asyncio.gather(
            *(client.post("/v1/decisions", content=body, headers=headers(key)) for client in [one, two] * 5)
        )
        metrics = (await one.get("/metrics")).text + (await two.get("/metrics")).text
    assert len(counted_compute) == 1
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert sorted(r.headers["idempotent-replayed"] for r in responses) == ["false"] + ["true"] * 9
    assert 'ml_idempotency_total{outcome="wait"}' in metrics


async def test_a_key_reused_with_another_body_is_rejected_on_any_replica(
    make_app: Any, series: dict[str, CandleSeries], redis_url: str
) -> None:
    key = new_key()
    async with serving(make_app(Redis__ConnectionString=redis_url)) as one:
        first = await one.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(key))
    async with serving(make_app(Redis__ConnectionString=redis_url)) as two:
        reused = await two.post("/v1/decisions", content=encode(decision_body(series, end=3000)), headers=headers(key))
    assert first.status_code == 200
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


async def test_redis_unreachable_at_start_is_degraded_but_answers(
    make_app: Any, series: dict[str, CandleSeries]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    key, body = new_key(), encode(decision_body(series))
    async with serving(make_app(Redis__ConnectionString=dead, MlService__RedisRetrySeconds=60)) as client:
        ready = await client.get("/health/ready")
        first = await client.post("/v1/decisions", content=body, headers=headers(key))
        replay = await client.post("/v1/decisions", content=body, headers=headers(key))
        metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["idempotency"]["store"] == "degraded"
    assert "Redis unavailable" in ready.json()["idempotency"]["detail"]
    assert first.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"  # the in-memory fallback still deduplicates
    assert "ml_idempotency_degraded 1.0" in metrics


async def test_redis_dying_mid_run_degrades_then_recovers(
    make_app: Any, series: dict[str, CandleSeries], private_redis: RedisServer
) -> None:
    app = make_app(Redis__ConnectionString=private_redis.url, MlService__RedisRetrySeconds=0)
    async with serving(app) as client:
        before = await client.post("/v1/decisions", content=encode(decision_body(series)), headers=headers(new_key()))
        assert (await client.get("/health/ready")).json()["status"] == "ready"

        private_redis.stop()
        key, body = new_key(), encode(decision_body(series, end=2100))
        during = await client.post("/v1/decisions", content=body, headers=headers(key))
        replay = await client.post("/v1/decisions", content=body, headers=headers(key))
        degraded = (await client.get("/health/ready")).json()

        private_redis.start()
        recovered = (await client.get("/health/ready")).json()
        after = await client.post(
            "/v1/decisions", content=encode(decision_body(series, end=2200)), headers=headers(new_key())
        )

    assert before.status_code == 200
    assert during.status_code == 200, during.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert degraded["status"] == "degraded"
    assert degraded["idempotency"]["store"] == "degraded"
    assert recovered["status"] == "ready"
    assert recovered["idempotency"]["store"] == "redis"
    assert after.status_code == 200


async def test_the_redis_lock_is_set_nx_with_expiry_and_released_only_by_its_owner(redis_url: str) -> None:
    store = RedisStore(redis_url)
    key = new_key()
    try:
        assert await store.acquire(key, "owner", ttl_s=0.3) is True
        assert await store.acquire(key, "intruder", ttl_s=0.3) is False
        await store.release(key, "intruder")  # not the owner: the lock stays
        assert await store.acquire(key, "intruder", ttl_s=0.3) is False
        await asyncio.sleep(0.4)  # expired: a crashed owner never blocks the key for good
        assert await store.acquire(key, "next", ttl_s=5) is True
        await store.release(key, "next")
        assert await store.acquire(key, "again", ttl_s=5) is True
        await store.release(key, "again")
    finally:
        await store.close()


async def test_the_redis_lock_is_renewed_only_by_its_owner(redis_url: str) -> None:
    store = RedisStore(redis_url)
    key = new_key()
    try:
        assert await store.acquire(key, "owner", ttl_s=0.3) is True
        assert await store.renew(key, "intruder", ttl_s=5) is False
        assert await store.renew(key, "owner", ttl_s=5) is True
        await asyncio.sleep(0.4)  # past the first expiry: the renewal keeps the lock
        assert await store.acquire(key, "next", ttl_s=5) is False
        await store.release(key, "owner")
        assert await store.renew(key, "owner", ttl_s=5) is False
    finally:
        await store.close()


async def test_the_memory_store_has_the_same_lock_and_expiry_semantics() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    response = StoredResponse("f", 200, "application/json", b"{}")
    await store.put("k", response, ttl_s=10)
    assert await store.acquire("k", "a", ttl_s=5) is True
    assert await store.acquire("k", "b", ttl_s=5) is False
    now[0] += 9
    assert await store.get("k") == response
    assert await store.acquire("k", "b", ttl_s=5) is True
    now[0] += 2
    assert await store.get("k") is None


def test_azure_cache_connection_strings_become_urls() -> None:
    assert redis_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert (
        redis_url("race.redis.cache.windows.net:6380,password=a/b+c=,ssl=True,abortConnect=False")
        == "rediss://:a%2Fb%2Bc%3D@race.redis.cache.windows.net:6380/0"
    )
    assert redis_url("localhost") == "redis://localhost:6379/0"
