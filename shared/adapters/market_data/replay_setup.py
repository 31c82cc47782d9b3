"""What a replay on your own data changes in a race's setup: its assets, and where its clock starts.

With the bundled 2024 set and no `MarketData__ReplayAssets`, nothing changes: the seeded five assets race from
`MarketData__ReplayStart`. With `MarketData__ReplayDir` (or `ReplayAssets`), the race's assets are the chosen
symbols with a file (an asset the seed does not know gets a row named after its symbol), and, unless
`MarketData__ReplayStart` is set, the clock starts once every chosen asset has a snapshot's worth of candles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.cycles import floor_time
from shared.domain.model import Asset, interval_delta

if TYPE_CHECKING:
    from shared.config import Settings


def race_assets(settings: Settings, provider: Any) -> tuple[Asset, ...]:
    """The assets to seed: the default five, or the replayed files' symbols (known ones keep their names)."""
    from shared.adapters.market_data.replay_dir import chosen_symbols
    from shared.services.seed import DEFAULT_ASSETS

    market = settings.market_data
    if market.provider != "replay" or (market.replay_dir is None and not market.replay_assets.strip()):
        return DEFAULT_ASSETS
    known = {asset.symbol: asset for asset in DEFAULT_ASSETS}
    symbols = chosen_symbols(market.replay_assets) if market.replay_dir is None else provider.available_symbols()
    missing = sorted(set(symbols or ()) - set(provider.available_symbols()))
    if missing:
        raise ValueError(f"MarketData__ReplayAssets: no bundled {market.interval} candles for {', '.join(missing)}")
    # coingecko_id is what the live provider would look up; a replayed-only asset has none, its symbol stands in.
    return tuple(known.get(symbol, Asset(symbol, symbol, symbol.lower())) for symbol in symbols or ())


def replay_start(settings: Settings, provider: Any, symbols: list[str]) -> datetime:
    """The first cycle of a fresh race: `MarketData__ReplayStart` when set (or with the bundled data), else
    the first cycle at which every asset in `symbols` has `Race__SnapshotCandles` candles closed."""
    market = settings.market_data
    if market.replay_dir is None or "replay_start" in market.model_fields_set:
        return market.replay_start
    firsts = [found[0] for symbol in symbols if (found := provider.coverage(symbol)) is not None]
    if not firsts:
        return market.replay_start
    warmed = max(firsts) + settings.race.snapshot_candles * interval_delta(market.interval)
    cycle = timedelta(minutes=settings.race.cycle_minutes)
    start = floor_time(warmed, cycle)
    return start if start == warmed else start + cycle


def with_replay_data(settings: Settings, provider: Any) -> Settings:
    """`settings` with the replay start of its own data (see `replay_start`); unchanged for the bundled set."""
    market = settings.market_data
    if market.provider != "replay" or market.replay_dir is None or "replay_start" in market.model_fields_set:
        return settings
    start = replay_start(settings, provider, [asset.symbol for asset in race_assets(settings, provider)])
    return settings.model_copy(update={"market_data": market.model_copy(update={"replay_start": start})})
