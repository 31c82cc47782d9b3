"""Shared pieces of the CoinGecko tests: a fake clock that sleeps instantly, and providers wired to a stand-in."""

from __future__ import annotations

from typing import Any

from shared.adapters.market_data.coingecko import CoinGeckoConfig, CoinGeckoMarketDataProvider, CoinGeckoResilience
from shared.config import CoinGeckoSettings
from tests.coingecko.standin import CoinGeckoStandIn


class FakeTime:
    """Monotonic time that only moves when someone sleeps: retries and rate limits cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def coingecko_settings(standin: CoinGeckoStandIn, **values: Any) -> CoinGeckoSettings:
    return CoinGeckoSettings(**{"BaseUrl": standin.base_url, "TimeoutSeconds": 2, **values})


def make_provider(
    standin: CoinGeckoStandIn, fake_time: FakeTime, *, interval: str = "1h", **values: Any
) -> CoinGeckoMarketDataProvider:
    settings = coingecko_settings(standin, **values)
    resilience = CoinGeckoResilience.from_settings(settings, sleep=fake_time.sleep, clock=fake_time.monotonic)
    return CoinGeckoMarketDataProvider(
        CoinGeckoConfig.from_settings(settings),
        resilience,
        interval=interval,
        id_overrides=settings.id_overrides,
    )
