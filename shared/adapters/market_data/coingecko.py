"""Live market data from the CoinGecko v3 API: `/coins/{id}/ohlc` for candles, `/simple/price` for the latest
prices, `/ping` for the health check. Keyless, Demo and Pro plans (base URL and key header per plan).

Every call goes through the shared resilience stack (`shared.adapters.resilience`): a client-side rate limiter
(calls per minute, the free plan's budget), a circuit breaker (a dead API costs a few attempts per run, not a
stalled timer), and tenacity retries of what is transient only (429, 5xx, timeouts, connection errors) with
exponential backoff, jitter and `Retry-After` honoured. Everything else fails at once as a `PermanentError`:
a key sent to the wrong plan's host (400 10010/10011) or a missing/invalid key (401) is a
`CoinGeckoConfigurationError` naming the setting to fix; a body of the wrong shape names the endpoint.

The port is synchronous (the market-data job runs in a worker thread); the client is async like every other
outbound adapter, so `fetch_candles` runs it on its own event loop with a connection pool for that run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from shared.adapters.echo_scrub import scrub_echo
from shared.adapters.http import tls_context
from shared.adapters.market_data.coingecko_mapping import (
    CoinGeckoResponseError,
    MappedAnswer,
    ParsedOhlc,
    map_answer,
    parse_ohlc,
    parse_simple_price,
    source_for,
)
from shared.adapters.resilience import (
    CallTimeoutError,
    CircuitBreaker,
    MonotonicClock,
    PermanentError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    Sleep,
    TransientError,
    retry_hint,
    retrying,
)
from shared.domain.model import Asset, Candle
from shared.services.ports import CandleFetch

if TYPE_CHECKING:
    from shared.config import CoinGeckoSettings

logger = logging.getLogger(__name__)

__all__ = [
    "CoinGeckoClient",
    "CoinGeckoConfig",
    "CoinGeckoConfigurationError",
    "CoinGeckoMarketDataProvider",
    "CoinGeckoResilience",
    "CoinGeckoResponseError",
    "NoUsableCandlesError",
]

TRANSIENT_STATUSES = frozenset({408, 425, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
WRONG_HOST_CODES = {10010, 10011}
MAX_ERROR_TEXT = 300
KEY_HEADERS = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
T = TypeVar("T")


class CoinGeckoConfigurationError(PermanentError):
    """CoinGecko refused the request because of how the app is configured (key, plan, host); the message
    names the setting to change. Retrying cannot help."""


class NoUsableCandlesError(CoinGeckoResponseError):
    """CoinGecko answered, but not one candle of the window could be made of it (every row unsound, a
    granularity the race's interval cannot be built from, no fresh rows). It counts as a failure for the
    breaker and for health; `dropped` lists what was not used and why."""

    def __init__(self, message: str, *, dropped: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.dropped = tuple(dropped)


@dataclass(frozen=True, slots=True)
class CoinGeckoConfig:
    base_url: str
    plan: str  # keyless | demo | pro
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: CoinGeckoSettings) -> CoinGeckoConfig:
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        return cls(settings.resolved_base_url, settings.resolved_plan, key, settings.timeout_seconds)

    @property
    def auth_headers(self) -> dict[str, str]:
        if self.api_key is None or self.plan not in KEY_HEADERS:
            return {}
        return {KEY_HEADERS[self.plan]: self.api_key}


@dataclass
class CoinGeckoResilience:
    """Process-wide state shared by every run: the budget and the breaker outlive one timer invocation."""

    limiter: RateLimiter
    breaker: CircuitBreaker
    policy: RetryPolicy
    sleep: Sleep = asyncio.sleep
    clock: MonotonicClock = time.monotonic
    rng: random.Random | None = None
    attempts: int = 0  # HTTP requests sent, for the bench and the logs

    @classmethod
    def from_settings(
        cls, settings: CoinGeckoSettings, *, sleep: Sleep = asyncio.sleep, clock: MonotonicClock = time.monotonic
    ) -> CoinGeckoResilience:
        return cls(
            limiter=RateLimiter(
                requests_per_minute=settings.calls_per_minute,
                tokens_per_minute=1,  # CoinGecko counts calls only; each call reserves 0 tokens
                clock=clock,
                sleep=sleep,
            ),
            breaker=CircuitBreaker(
                failure_threshold=settings.breaker_failures, reset_after=settings.breaker_reset_seconds, clock=clock
            ),
            policy=RetryPolicy(max_retries=settings.max_retries, base_delay=1.0, max_delay=30.0),
            sleep=sleep,
            clock=clock,
        )


class CoinGeckoClient:
    """The three endpoints the race uses, over one `httpx.AsyncClient` (injected: tests pass a MockTransport
    or point `base_url` at a local stand-in). The key travels in the plan's header, never in a URL or message."""

    def __init__(self, http: httpx.AsyncClient, config: CoinGeckoConfig, resilience: CoinGeckoResilience) -> None:
        self._http, self._config, self._r = http, config, resilience

    async def ping(self) -> str:
        body = await self._get("/ping", {})
        if not isinstance(body, dict) or not isinstance(body.get("gecko_says"), str):
            raise CoinGeckoResponseError("/ping: expected {'gecko_says': ...}")
        return str(body["gecko_says"])

    async def simple_price(self, ids: Sequence[str]) -> dict[str, tuple[Decimal, datetime]]:
        """Latest USD price and its time per coin id (ids CoinGecko does not know are absent)."""
        params = {"ids": ",".join(ids), "vs_currencies": "usd", "include_last_updated_at": "true"}
        return parse_simple_price(await self._get("/simple/price", params), endpoint="/simple/price", ids=ids)

    async def ohlc(self, coin_id: str, *, days: int) -> ParsedOhlc:
        return await self.ohlc_mapped(coin_id, days=days, accept=lambda parsed: parsed)

    async def ohlc_mapped(self, coin_id: str, *, days: int, accept: Callable[[ParsedOhlc], T]) -> T:
        """`/ohlc` rows passed to `accept` inside the attempt: an answer `accept` refuses with a
        CoinGeckoResponseError (nothing usable in it) is a failure for the breaker, like a malformed body."""
        path = f"/coins/{quote(coin_id, safe='')}/ohlc"
        result: T = await self._get(
            path, {"vs_currency": "usd", "days": str(days)}, lambda body: accept(parse_ohlc(body, endpoint=path))
        )
        return result

    async def _get(self, path: str, params: Mapping[str, str], accept: Callable[[object], T] | None = None) -> Any:
        r = self._r
        async for attempt in retrying(r.policy, clock=r.clock, sleep=r.sleep, rng=r.rng):
            with attempt:
                return await self._attempt(path, params, accept)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, path: str, params: Mapping[str, str], accept: Callable[[object], T] | None) -> Any:
        breaker, limiter = self._r.breaker, self._r.limiter
        breaker.before_call()  # CircuitOpenError: not retried, the run moves on at once
        try:
            await limiter.acquire(0, max_wait=self._r.policy.max_delay)
        except RateLimitedError:
            breaker.record_neutral()
            raise
        self._r.attempts += 1
        try:
            response = await self._http.get(
                f"{self._config.base_url}{path}",
                params=dict(params),
                headers={"accept": "application/json", **self._config.auth_headers},
                timeout=self._config.timeout_s,
            )
        except httpx.TimeoutException as exc:
            breaker.record_failure()
            raise CallTimeoutError(f"{path}: no answer within {self._config.timeout_s:g}s") from exc
        except httpx.TransportError as exc:
            breaker.record_failure()
            raise TransientError(f"{path}: connection failed ({type(exc).__name__})") from exc
        try:
            body = self._check(path, response)
            result = accept(body) if accept is not None else body
        except (TransientError, CoinGeckoResponseError):
            if response.status_code != 429:
                breaker.record_failure()
            else:
                breaker.record_neutral()  # CoinGecko is up, we are just over budget
            raise
        except PermanentError:
            breaker.record_neutral()  # our request is wrong, not CoinGecko unwell
            raise
        breaker.record_success()
        return result

    def _check(self, path: str, response: httpx.Response) -> object:
        status = response.status_code
        if status == 200:
            try:
                # Decimal straight from the text: prices never pass through float. NaN/Infinity parse too, as
                # Decimal, and are dropped by the screening with their reason.
                return json.loads(response.text, parse_float=Decimal, parse_constant=Decimal)
            except ValueError as exc:
                raise CoinGeckoResponseError(f"{path}: 200 with a body that is not JSON: {exc}") from exc
        code, message = _error_details(response)
        message = scrub_echo(message, response)  # a 401 body may repeat the key
        detail = f"{path}: HTTP {status}" + (f" error_code {code}" if code is not None else "") + f": {message}"
        if status == 429:
            hint = retry_hint(response.headers)
            self._r.limiter.pause_for(hint if hint is not None else 60.0)
            raise RateLimitedError(detail, status=status, retry_after=hint)
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientError(detail, status=status, retry_after=retry_hint(response.headers))
        if code in WRONG_HOST_CODES or status in (401, 403) or code == 10002:
            raise CoinGeckoConfigurationError(f"{detail}. {self._configuration_hint(code, status)}", status=status)
        raise PermanentError(detail, status=status)

    def _configuration_hint(self, code: int | None, status: int) -> str:
        host = self._config.base_url
        if code == 10010:
            return (
                f"A Pro key (or the Pro header) reached {host}: set CoinGecko__Plan=pro "
                "(base URL pro-api.coingecko.com), or put a Demo key in CoinGecko__ApiKey"
            )
        if code == 10011:
            return (
                f"A Demo key reached {host}: set CoinGecko__Plan=demo and remove CoinGecko__BaseUrl "
                "(Demo keys work on api.coingecko.com only), or put a Pro key in CoinGecko__ApiKey"
            )
        if status == 403:
            return f"CoinGecko blocked the request: check CoinGecko__ApiKey and CoinGecko__Plan ({self._config.plan})"
        return (
            f"CoinGecko__ApiKey is missing or invalid for plan {self._config.plan} at {host}: "
            "set CoinGecko__ApiKey (Key Vault reference in Azure) and CoinGecko__Plan"
        )


def _error_details(response: httpx.Response) -> tuple[int | None, str]:
    """(error_code, message) from CoinGecko's three error shapes: {"status": {"error_code", "error_message"}},
    {"error_code", "status": {"error_message"}}, {"error": "..."}; else the text, cut short."""
    try:
        body = response.json()
    except ValueError:
        return None, (response.text.strip() or response.reason_phrase)[:MAX_ERROR_TEXT]
    if not isinstance(body, dict):
        return None, str(body)[:MAX_ERROR_TEXT]
    nested = body.get("status")
    status: dict[str, Any] = nested if isinstance(nested, dict) else {}
    code = body.get("error_code", status.get("error_code"))
    message = status.get("error_message") or body.get("error") or body.get("message") or json.dumps(body)
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), str(message)[:MAX_ERROR_TEXT]


def default_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=tls_context(), headers={"user-agent": "ai-trading-race/1 (+market-data)"})


class CoinGeckoMarketDataProvider:
    """`MarketDataProvider` on CoinGecko: one `/ohlc` call per asset and run (`days` as small as the window
    allows, counted back from the job's time), mapped to the race's interval by `coingecko_mapping` whatever
    candle length the rows turn out to have. Asset ids come from the seeded `Asset.coingecko_id`, overridable by
    settings. `problems` holds, per symbol, why its latest answer gave nothing usable (read by `/api/health`)."""

    name = "coingecko"

    def __init__(
        self,
        config: CoinGeckoConfig,
        resilience: CoinGeckoResilience,
        *,
        interval: str,
        http_factory: Callable[[], httpx.AsyncClient] = default_http_client,
        id_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.config, self.resilience, self.interval = config, resilience, interval
        self.source = source_for(interval)
        self._http_factory = http_factory
        self._ids = dict(id_overrides or {})
        self.problems: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: CoinGeckoSettings, *, interval: str) -> CoinGeckoMarketDataProvider:
        return cls(
            CoinGeckoConfig.from_settings(settings),
            CoinGeckoResilience.from_settings(settings),
            interval=interval,
            id_overrides=settings.id_overrides,
        )

    def coin_id(self, asset: Asset) -> str:
        return self._ids.get(asset.symbol.upper(), asset.coingecko_id)

    def fetch_candles(self, assets: Sequence[Asset], *, start: datetime, end: datetime) -> list[Candle]:
        """Candles of every asset; an asset whose answer gave nothing usable raises NoUsableCandlesError."""
        candles: list[Candle] = []
        for asset in assets:
            fetched = self.fetch_report(asset, start=start, end=end)
            if fetched.problem is not None:
                raise NoUsableCandlesError(fetched.problem, dropped=fetched.dropped)
            candles.extend(fetched.candles)
        return candles

    def fetch_report(self, asset: Asset, *, start: datetime, end: datetime) -> CandleFetch:
        """One asset's candles of [start, end], each row not used with its reason, and the problem when none
        was usable. Transport, HTTP and shape errors raise the project's errors as before."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive start/end: market data windows are UTC-aware")
        return _run(lambda http: self._fetch(http, asset, start, end), self._http_factory)

    def latest_prices(self, assets: Sequence[Asset]) -> dict[str, tuple[Decimal, datetime]]:
        """{symbol: (USD price, as of)} from `/simple/price`, one call for all assets."""
        ids = {self.coin_id(a): a.symbol for a in assets}
        prices = _run(lambda http: self._client(http).simple_price(list(ids)), self._http_factory)
        return {ids[coin_id]: value for coin_id, value in prices.items()}

    def ping(self) -> str:
        """CoinGecko's `/ping` answer; raises the project's errors when the API cannot be reached."""
        return _run(lambda http: self._client(http).ping(), self._http_factory)

    def _client(self, http: httpx.AsyncClient) -> CoinGeckoClient:
        return CoinGeckoClient(http, self.config, self.resilience)

    async def _fetch(self, http: httpx.AsyncClient, asset: Asset, start: datetime, end: datetime) -> CandleFetch:
        # The window is the job's: `end` is its time (a job run for a past time asks for that time's window,
        # not the wall clock's). CoinGecko counts `days` back from its own now, so on the live API the two agree.
        days = self.source.days_for(start, end)
        if start < self.source.reach(end):
            logger.warning(
                "CoinGecko serves %s candles for the last %d days only: %s candles before %s are out of reach",
                self.source.interval,
                self.source.max_days,
                self.interval,
                self.source.reach(end).isoformat(),
                extra={"provider": self.name, "reach": self.source.reach(end).isoformat()},
            )

        def accept(parsed: ParsedOhlc) -> MappedAnswer:
            mapped = map_answer(
                asset.symbol, parsed, expected=self.source.interval, interval=self.interval, start=start, end=end
            )
            if mapped.problem is not None:
                path = f"/coins/{self.coin_id(asset)}/ohlc"
                raise NoUsableCandlesError(f"{path}: {mapped.problem}", dropped=mapped.dropped)
            return mapped

        try:
            mapped = await self._client(http).ohlc_mapped(self.coin_id(asset), days=days, accept=accept)
        except NoUsableCandlesError as exc:
            self.problems[asset.symbol] = str(exc)
            logger.error(
                "CoinGecko gave no usable candle for %s: %s",
                asset.symbol,
                exc,
                extra={"provider": self.name, "symbol": asset.symbol},
            )
            return CandleFetch([], exc.dropped, str(exc))
        self.problems.pop(asset.symbol, None)
        if mapped.source != self.source.interval:
            logger.info(
                "CoinGecko answered %s candles for %s (expected %s): built %s candles from them",
                mapped.source,
                asset.symbol,
                self.source.interval,
                self.interval,
                extra={"provider": self.name, "symbol": asset.symbol, "granularity": mapped.source},
            )
        return CandleFetch(mapped.candles, tuple(mapped.dropped))


def _run(call: Callable[[httpx.AsyncClient], Awaitable[T]], http_factory: Callable[[], httpx.AsyncClient]) -> T:
    """Run one provider call on a fresh event loop with its own connection pool (a pool cannot outlive the loop
    it was opened on, and the Functions host gives every invocation its own thread and loop)."""

    async def main() -> T:
        async with http_factory() as http:
            return await call(http)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    raise RuntimeError("CoinGecko provider called on an event loop: run it in a worker thread (asyncio.to_thread)")
