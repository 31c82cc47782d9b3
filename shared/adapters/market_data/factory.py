"""Picks the market data provider named by `MarketData__Provider`; a new provider is one entry in `_BUILDERS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.services.ports import MarketDataProvider

if TYPE_CHECKING:
    from shared.config import Settings


class MarketDataProviderUnavailable(NotImplementedError):
    """The configured market data provider cannot be used in this build or configuration."""


def _replay(settings: Settings) -> MarketDataProvider:
    provider = ReplayMarketDataProvider(interval=settings.market_data.interval)
    if not provider.available_symbols():
        raise MarketDataProviderUnavailable(
            f"MarketData__Provider=replay has no bundled candles for MarketData__Interval="
            f"{settings.market_data.interval!r} (look in {provider.directory})"
        )
    return provider


def _coingecko(settings: Settings) -> MarketDataProvider:
    raise MarketDataProviderUnavailable(
        "MarketData__Provider=coingecko is not available yet; set MarketData__Provider=replay"
    )


_BUILDERS: Mapping[str, Callable[[Settings], MarketDataProvider]] = {
    "replay": _replay,
    "coingecko": _coingecko,
}


def make_market_data_provider(settings: Settings) -> MarketDataProvider:
    """The provider for `settings.market_data.provider`; MarketDataProviderUnavailable says why one cannot be used."""
    name = settings.market_data.provider
    try:
        build = _BUILDERS[name]
    except KeyError:
        raise MarketDataProviderUnavailable(
            f"unknown MarketData__Provider {name!r}; use one of {', '.join(sorted(_BUILDERS))}"
        ) from None
    return build(settings)
