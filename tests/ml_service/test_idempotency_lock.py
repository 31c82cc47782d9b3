"""A computation that outlives the idempotency lock's TTL keeps its lock (renewed): a second replica waits
for its stored response instead of computing the same key again."""

from __future__ import annotations

import asyncio

import pytest

from ml_service.idempotency import IdempotencyCoordinator, MemoryStore, StoredResponse

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_slow_computation_is_computed_once_across_replicas() -> None:
    shared = MemoryStore()  # stands for Redis: both replicas see the same locks and responses
    replicas = [IdempotencyCoordinator(shared, lock_ttl_s=0.1), IdempotencyCoordinator(shared, lock_ttl_s=0.1)]
    computed: list[int] = []

    async def slow_inference(replica: int) -> StoredResponse:
        computed.append(replica)
        await asyncio.sleep(0.5)  # five lock lifetimes
        return StoredResponse("fp", 200, "application/json", b'{"orders": []}')

    async def call(replica: int, delay: float) -> str:
        await asyncio.sleep(delay)
        result = await replicas[replica].execute("key-1", "fp", lambda: slow_inference(replica))
        return result.outcome

    outcomes = await asyncio.gather(call(0, 0), call(1, 0.25))

    assert computed == [0]
    assert outcomes == ["miss", "wait"]


async def test_a_renewal_keeps_only_the_holders_lock() -> None:
    store = MemoryStore()
    assert await store.acquire("k", "mine", 10)
    assert await store.renew("k", "mine", 10)
    assert not await store.renew("k", "someone else's", 10)
    await store.release("k", "mine")
    assert not await store.renew("k", "mine", 10)
