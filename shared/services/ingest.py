"""Use case: fetch closed candles from the market data provider, screen them, and store them idempotently."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from shared.domain.model import Asset, Candle, interval_delta
from shared.domain.snapshot import screen_candles
from shared.services.ports import CandleFetch, MarketDataProvider, ReportingMarketDataProvider, UnitOfWorkFactory

logger = logging.getLogger(__name__)


@runtime_checkable
class IngestMetrics(Protocol):
    """Where ingest counts what it could not use (telemetry); the real one never raises into the job."""

    def candles_dropped(self, provider: str, symbol: str, count: int) -> None: ...
    def fetch_unusable(self, provider: str, symbol: str) -> None: ...


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest run did. `dropped` and `gaps` are (symbol, open time ISO, reason) and
    (symbol, first missing open time ISO, last missing open time ISO). `missing` lists, in the `gaps` form, the
    closed candles not fetched because the provider failed, or answered with nothing usable (then `errors` says
    why and `dropped` lists each row it could not use): the next successful run backfills them."""

    now: datetime
    fetched: int
    stored: int
    dropped: tuple[tuple[str, str, str], ...]
    gaps: tuple[tuple[str, str, str], ...]
    latest: Mapping[str, datetime | None]
    errors: Mapping[str, str]
    missing: tuple[tuple[str, str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "fetched": self.fetched,
            "stored": self.stored,
            "dropped": [{"symbol": s, "open_time": t, "reason": r} for s, t, r in self.dropped],
            "gaps": [{"symbol": s, "from": a, "to": b} for s, a, b in self.gaps],
            "latest": {s: (t.isoformat() if t else None) for s, t in self.latest.items()},
            "errors": dict(self.errors),
            "missing": [{"symbol": s, "from": a, "to": b} for s, a, b in self.missing],
        }


def ingest_market_data(
    *,
    uow_factory: UnitOfWorkFactory,
    provider: MarketDataProvider,
    now: datetime,
    interval: str,
    backfill: timedelta,
    metrics: IngestMetrics | None = None,
) -> IngestReport:
    """Fetch each active asset's closed candles since its latest stored one (or `now - backfill` on an empty
    table), drop unsound rows with their reason, and upsert the rest. A second run at the same `now` writes
    nothing. A provider failure for one asset is recorded in the report and the other assets continue. Every
    provider call asks for the window ending at `now`, the job's time, never the wall clock's."""
    if now.tzinfo is None:
        raise ValueError("naive `now`: ingest times are always UTC-aware")
    step = interval_delta(interval)

    with uow_factory() as uow:
        assets = uow.assets.list(active_only=True)
        stored_latest = uow.candles.latest_open_times([a.symbol for a in assets], interval)

    fetched = 0
    to_store: list[Candle] = []
    dropped: list[tuple[str, str, str]] = []
    gaps: list[tuple[str, str, str]] = []
    errors: dict[str, str] = {}
    missing: list[tuple[str, str, str]] = []
    latest: dict[str, datetime | None] = dict(stored_latest)

    # The provider is called outside any transaction: a slow HTTP call must not hold database locks.
    for asset in assets:
        previous = stored_latest[asset.symbol]
        start = previous + step if previous is not None else now - backfill
        if start + step > now:
            continue  # nothing can have closed since the latest stored candle
        try:
            fetch = _fetch(provider, asset, start=start, end=now)
        except Exception as exc:  # any provider failure is isolated to its asset
            logger.warning("market data fetch failed for %s: %s: %s", asset.symbol, type(exc).__name__, exc)
            fetch = CandleFetch([], problem=f"{type(exc).__name__}: {exc}")
        else:
            if fetch.dropped and metrics is not None:
                metrics.candles_dropped(provider.name, asset.symbol, len(fetch.dropped))
            if fetch.problem is not None and metrics is not None:
                metrics.fetch_unusable(provider.name, asset.symbol)
        dropped.extend((asset.symbol, label, reason) for label, reason in fetch.dropped)
        candles = fetch.candles
        if fetch.problem is not None and not candles:
            errors[asset.symbol] = fetch.problem
            last_closed = start + ((now - start) // step - 1) * step
            missing.append((asset.symbol, start.isoformat(), last_closed.isoformat()))
            logger.warning(
                "market data gap for %s from %s to %s (open times): the next run backfills it",
                asset.symbol,
                start.isoformat(),
                last_closed.isoformat(),
                extra={"symbol": asset.symbol, "gap_from": start.isoformat(), "gap_to": last_closed.isoformat()},
            )
            continue
        fetched += len(candles)
        accepted = _screen(asset, candles, interval=interval, now=now, dropped=dropped)
        gaps.extend(_gaps(asset.symbol, previous, accepted, step))
        to_store.extend(accepted)
        if accepted:
            latest[asset.symbol] = accepted[-1].open_time

    stored = 0
    if to_store:
        with uow_factory() as uow:
            stored = uow.candles.upsert(to_store)
            uow.commit()

    report = IngestReport(now, fetched, stored, tuple(dropped), tuple(gaps), latest, errors, tuple(missing))
    for symbol, open_time, reason in dropped:
        logger.warning("dropped candle %s %s: %s", symbol, open_time, reason)
    logger.info(
        "market data ingested: provider=%s fetched=%d stored=%d dropped=%d gaps=%d errors=%d",
        provider.name,
        fetched,
        stored,
        len(dropped),
        len(gaps),
        len(errors),
    )
    return report


def _fetch(provider: MarketDataProvider, asset: Asset, *, start: datetime, end: datetime) -> CandleFetch:
    if isinstance(provider, ReportingMarketDataProvider):
        return provider.fetch_report(asset, start=start, end=end)
    return CandleFetch(provider.fetch_candles([asset], start=start, end=end))


def _screen(
    asset: Asset, candles: list[Candle], *, interval: str, now: datetime, dropped: list[tuple[str, str, str]]
) -> list[Candle]:
    """Sound candles of this asset and interval, ascending; everything else lands in `dropped` with a reason."""
    relevant: list[Candle] = []
    for candle in candles:
        if candle.symbol != asset.symbol:
            dropped.append((candle.symbol, candle.open_time.isoformat(), f"not requested (asked for {asset.symbol})"))
        elif candle.interval != interval:
            dropped.append((candle.symbol, candle.open_time.isoformat(), f"interval {candle.interval} != {interval}"))
        else:
            relevant.append(candle)
    screening = screen_candles(relevant, now)
    dropped.extend((c.symbol, c.open_time.isoformat(), reason) for c, reason in screening.dropped)
    return list(screening.accepted)


def _gaps(
    symbol: str, previous: datetime | None, accepted: list[Candle], step: timedelta
) -> list[tuple[str, str, str]]:
    """Missing open times between the stored history and the new candles, and within the new candles."""
    found: list[tuple[str, str, str]] = []
    expected = previous + step if previous is not None else None
    for candle in accepted:
        if expected is not None and candle.open_time > expected:
            found.append((symbol, expected.isoformat(), (candle.open_time - step).isoformat()))
        expected = candle.open_time + step
    return found
