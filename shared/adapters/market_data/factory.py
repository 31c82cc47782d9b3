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
    if settings.market_data.replay_dir is not None:
        from shared.adapters.market_data.replay_dir import DirectoryReplayProvider, chosen_symbols

        # Every file is read and checked here: a bad one stops the start (ReplayDataError), nothing stored.
        return DirectoryReplayProvider(
            settings.market_data.replay_dir,
            interval=settings.market_data.interval,
            symbols=chosen_symbols(settings.market_data.replay_assets),
        )
    provider = ReplayMarketDataProvider(interval=settings.market_data.interval)
    if not provider.available_symbols():
        raise MarketDataProviderUnavailable(
            f"MarketData__Provider=replay has no bundled candles for MarketData__Interval="
            f"{settings.market_data.interval!r} (look in {provider.directory})"
        )
    return provider


def _coingecko(settings: Settings) -> MarketDataProvider:
    from shared.adapters.market_data.coingecko import CoinGeckoMarketDataProvider
    from shared.adapters.market_data.coingecko_mapping import SOURCES

    interval = settings.market_data.interval
    if interval not in SOURCES:
        raise MarketDataProviderUnavailable(
            f"MarketData__Provider=coingecko cannot serve MarketData__Interval={interval!r}; "
            f"use one of {', '.join(sorted(SOURCES))}"
        )
    return CoinGeckoMarketDataProvider.from_settings(settings.coingecko, interval=interval)


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
