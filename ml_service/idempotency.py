"""Idempotent execution of `POST /v1/decisions` (the seed's Sprint 8.5).

The first response for an `Idempotency-Key` is stored for a TTL (1 h) and replayed byte for byte; a concurrent
duplicate waits for the first computation instead of running its own (a `SET NX PX` lock shared by every
replica through Redis, plus an in-process future for duplicates inside one replica); the same key with a
different body is a conflict. The lock (10 s) is renewed every third of its TTL while the computation runs, so
a slow inference is never computed twice across replicas. Without Redis configured the store is in memory (one
replica only); when Redis fails mid-run the coordinator carries on in memory, reports itself degraded, and
probes Redis again later.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar
from urllib.parse import quote

log = logging.getLogger("ml_service.idempotency")

KEY_PREFIX = "ml:idem:"
LOCK_PREFIX = "ml:idem-lock:"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as sent: status, media type and the exact body bytes; `fingerprint` identifies the request."""

    fingerprint: str
    status_code: int
    media_type: str
    body: bytes

    def dumps(self) -> str:
        return json.dumps(
            {
                "f": self.fingerprint,
                "s": self.status_code,
                "m": self.media_type,
                "b": base64.b64encode(self.body).decode(),
            }
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> StoredResponse:
        data = json.loads(raw)
        return cls(data["f"], int(data["s"]), data["m"], base64.b64decode(data["b"]))


class IdempotencyStore(Protocol):
    """Where responses and locks live. Adapters: Redis (shared by replicas) and memory (one process)."""

    name: str

    async def get(self, key: str) -> StoredResponse | None: ...
    async def put(self, key: str, response: StoredResponse, ttl_s: float) -> None: ...
    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        """Take the computation lock for `key` unless someone holds it (SET NX with expiry)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Drop the lock if `token` still holds it (it may have expired and passed to another request)."""
        ...

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:
        """Extend the lock's expiry if `token` still holds it (a computation that outlives the lock's TTL)."""
        ...

    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryStore:
    """In-process store with the same semantics as Redis (expiry included); for one replica, tests and fallback."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, StoredResponse]] = {}
        self._locks: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> StoredResponse | None:
        entry = self._values.get(key)
        if entry is None or entry[0] <= self._clock():
            self._values.pop(key, None)
            return None
        return entry[1]

    async def put(self, key: str, response: StoredResponse, ttl_s: float) -> None:
        now = self._clock()
        if len(self._values) > 10_000:  # bounded: drop what has expired
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
        self._values[key] = (now + ttl_s, response)

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        now = self._clock()
        held = self._locks.get(key)
        if held is not None and held[0] > now:
            return False
        self._locks[key] = (now + ttl_s, token)
        return True

    async def release(self, key: str, token: str) -> None:
        held = self._locks.get(key)
        if held is not None and held[1] == token:
            del self._locks[key]

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:
        held = self._locks.get(key)
        if held is None or held[1] != token or held[0] <= self._clock():
            return False
        self._locks[key] = (self._clock() + ttl_s, token)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class StoreUnavailableError(Exception):
    """The idempotency store did not answer (connection refused, timeout, ...)."""


# Delete the lock only if it is still ours: a lock that expired may now belong to another request.
_RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class RedisStore:
    """Redis adapter (redis-py asyncio). Every failure becomes StoreUnavailableError, raised from the cause."""

    name = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(redis_url(url), socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def _call(self, operation: Awaitable[object]) -> object:
        from redis.exceptions import RedisError

        try:
            return await operation
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}: {exc}") from exc

    async def get(self, key: str) -> StoredResponse | None:
        raw = await self._call(self._client.get(KEY_PREFIX + key))
        return None if raw is None else StoredResponse.loads(raw)  # type: ignore[arg-type]

    async def put(self, key: str, response: StoredResponse, ttl_s: float) -> None:
        await self._call(self._client.set(KEY_PREFIX + key, response.dumps(), px=max(1, int(ttl_s * 1000))))

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        return bool(await self._call(self._client.set(LOCK_PREFIX + key, token, nx=True, px=max(1, int(ttl_s * 1000)))))

    async def release(self, key: str, token: str) -> None:
        await self._call(self._client.eval(_RELEASE_SCRIPT, 1, LOCK_PREFIX + key, token))

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:
        ttl_ms = str(max(1, int(ttl_s * 1000)))
        return bool(await self._call(self._client.eval(_RENEW_SCRIPT, 1, LOCK_PREFIX + key, token, ttl_ms)))

    async def ping(self) -> None:
        await self._call(self._client.ping())

    async def close(self) -> None:
        await self._client.aclose()


def redis_url(connection_string: str) -> str:
    """`redis://` / `rediss://` URLs as they are, or the Azure Cache for Redis form `host:6380,password=...,ssl=True`
    (the seed's StackExchange.Redis connection string) turned into the equivalent URL."""
    if "://" in connection_string:
        return connection_string
    host_port, *pairs = [p.strip() for p in connection_string.split(",") if p.strip()]
    host, _, port = host_port.partition(":")
    options = {name.strip().lower(): value for name, _, value in (p.partition("=") for p in pairs)}
    scheme = "rediss" if options.get("ssl", "").strip().lower() == "true" else "redis"
    user = quote(options.get("user", ""), safe="")
    password = quote(options.get("password", ""), safe="")
    auth = f"{user}:{password}@" if password else ""
    return f"{scheme}://{auth}{host}:{port or 6379}/0"


Outcome = Literal["miss", "hit", "wait", "conflict"]


@dataclass(frozen=True, slots=True)
class Result:
    response: StoredResponse
    outcome: Outcome  # miss: computed here; hit: replayed from the store; wait: replayed after a duplicate's run

    @property
    def replayed(self) -> bool:
        return self.outcome in ("hit", "wait")


class KeyConflictError(Exception):
    """The key was first used with a different request body."""


class StillRunningError(Exception):
    """A duplicate waited longer than the lock's lifetime for the first computation to finish."""


class IdempotencyCoordinator:
    """Runs a computation at most once per key (within the TTL) and replays its stored response.

    Only 2xx responses are stored: a request rejected for bad input may be fixed and sent again under its key.
    """

    def __init__(
        self,
        primary: IdempotencyStore | None,
        *,
        ttl_s: float = 3600,
        lock_ttl_s: float = 10,
        retry_primary_s: float = 5,
        fallback: MemoryStore | None = None,
        max_wait_s: float = 60,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryStore()
        self.ttl_s, self.lock_ttl_s, self.retry_primary_s = ttl_s, lock_ttl_s, retry_primary_s
        # A duplicate waits this long for a computation whose holder keeps renewing its lock.
        self.max_wait_s = max(max_wait_s, lock_ttl_s * 1.5)
        self.degraded_reason: str | None = None
        self._next_probe = 0.0
        self._inflight: dict[str, tuple[str, asyncio.Future[StoredResponse]]] = {}

    # ------------------------------------------------------------------ store selection and health

    @property
    def mode(self) -> Literal["redis", "memory", "degraded"]:
        if self.primary is None:
            return "memory"
        return "degraded" if self.degraded_reason else "redis"

    def describe(self) -> str:
        if self.primary is None:
            return "in-memory store: Redis__ConnectionString is not set (one replica only)"
        if self.degraded_reason:
            return f"degraded: Redis unavailable ({self.degraded_reason}); using the in-memory store"
        return "Redis"

    async def check(self) -> None:
        """Probe Redis now (readiness): recovers from degraded mode, or enters it."""
        if self.primary is None:
            return
        try:
            await self.primary.ping()
        except StoreUnavailableError as exc:
            self._degrade(str(exc))
        else:
            if self.degraded_reason:
                log.warning("idempotency store: Redis is back")
            self.degraded_reason = None

    def _degrade(self, reason: str) -> None:
        if self.degraded_reason is None:
            log.warning("idempotency store degraded to memory: %s", reason)
        self.degraded_reason = reason
        self._next_probe = time.monotonic() + self.retry_primary_s

    async def _store(self) -> IdempotencyStore:
        if self.primary is None:
            return self.fallback
        if self.degraded_reason and time.monotonic() >= self._next_probe:
            await self.check()
        return self.fallback if self.degraded_reason else self.primary

    async def _do(self, operation: Callable[[IdempotencyStore], Awaitable[T]]) -> T:
        store = await self._store()
        try:
            return await operation(store)
        except StoreUnavailableError as exc:
            self._degrade(str(exc))
            return await operation(self.fallback)

    # ------------------------------------------------------------------ execution

    async def execute(self, key: str, fingerprint: str, compute: Callable[[], Awaitable[StoredResponse]]) -> Result:
        """The stored response for `key`, or `compute()`'s, computed once across duplicates.
        KeyConflictError when `key` belongs to another body; StillRunningError when a duplicate waits too long."""
        inflight = self._inflight.get(key)
        if inflight is not None:  # a duplicate inside this replica: share the running computation
            if inflight[0] != fingerprint:
                raise KeyConflictError(key)
            return Result(await asyncio.shield(inflight[1]), "wait")
        future: asyncio.Future[StoredResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (fingerprint, future)
        try:
            result = await self._execute(key, fingerprint, compute)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, and nobody is warned about an unread error
            raise
        else:
            future.set_result(result.response)
            return result
        finally:
            del self._inflight[key]

    async def _execute(self, key: str, fingerprint: str, compute: Callable[[], Awaitable[StoredResponse]]) -> Result:
        stored = await self._do(lambda s: s.get(key))
        if stored is not None:
            return self._replay(key, stored, fingerprint, "hit")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.max_wait_s
        pause = 0.005
        while True:
            if await self._do(lambda s: s.acquire(key, token, self.lock_ttl_s)):
                try:
                    # Another replica may have stored it between our read and our lock.
                    stored = await self._do(lambda s: s.get(key))
                    if stored is not None:
                        return self._replay(key, stored, fingerprint, "hit")
                    computed = await self._computed_holding_lock(key, token, compute)
                    if 200 <= computed.status_code < 300:
                        await self._remember(key, computed)
                    return Result(computed, "miss")
                finally:
                    await self._do(lambda s: s.release(key, token))
            # Another replica holds the lock: wait for its stored response (or for its lock to expire).
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            stored = await self._do(lambda s: s.get(key))
            if stored is not None:
                return self._replay(key, stored, fingerprint, "wait")
            if time.monotonic() > deadline:
                raise StillRunningError(key)

    async def _computed_holding_lock(
        self, key: str, token: str, compute: Callable[[], Awaitable[StoredResponse]]
    ) -> StoredResponse:
        """`compute()`, renewing the lock every third of its TTL meanwhile: a slow inference keeps it, so no
        other replica computes the same key a second time."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lock_ttl_s / 3)
                try:
                    if not await self._do(lambda s: s.renew(key, token, self.lock_ttl_s)):
                        log.warning("idempotency lock for %s was lost while computing", key)
                        return
                except Exception:  # renewal is best effort: the computation goes on
                    log.exception("idempotency lock renewal failed for %s", key)
                    return

        renewal = asyncio.create_task(renew())
        try:
            return await compute()
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal

    async def _remember(self, key: str, response: StoredResponse) -> None:
        await self._do(lambda s: s.put(key, response, self.ttl_s))

    @staticmethod
    def _replay(key: str, stored: StoredResponse, fingerprint: str, outcome: Outcome) -> Result:
        if stored.fingerprint != fingerprint:
            raise KeyConflictError(key)
        return Result(stored, outcome)

    async def close(self) -> None:
        if self.primary is not None:
            await self.primary.close()
