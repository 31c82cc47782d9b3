"""Use case: mark every portfolio to market and store one equity snapshot per agent and time."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.domain.model import EquitySnapshot, Portfolio
from shared.services.ports import UnitOfWorkFactory

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EquityReport:
    at: datetime
    written: int
    skipped: int
    priced_symbols: tuple[str, ...] = ()
    statistics: Mapping[str, Any] | None = None  # what the statistics refresh after the marks did, if it ran

    def as_dict(self) -> dict[str, Any]:
        report = {
            "at": self.at.isoformat(),
            "written": self.written,
            "skipped": self.skipped,
            "priced_symbols": list(self.priced_symbols),
        }
        if self.statistics is not None:
            report["statistics"] = dict(self.statistics)
        return report


def snapshot_equity(*, uow_factory: UnitOfWorkFactory, at: datetime, interval: str) -> EquityReport:
    """Mark each portfolio at the latest close at or before `at` and store the snapshot with running peak and
    drawdown. Idempotent: an agent whose latest snapshot is already at (or after) `at` is skipped."""
    if at.tzinfo is None:
        raise ValueError("naive `at`: equity times are always UTC-aware")
    with uow_factory() as uow:
        marking = uow.equity.marking_inputs()
        # Inactive assets still price the positions an agent may hold in them.
        symbols = {asset.symbol for asset in uow.assets.list(active_only=False)}
        symbols.update(s for portfolio, _ in marking for s in portfolio.positions)
        latest = uow.candles.window(sorted(symbols), interval, at=at, count=1)
        prices = {symbol: rows[-1].close for symbol, rows in latest.items() if rows}

        snapshots = mark_to_market(marking, prices, at)
        written = uow.equity.add_many(snapshots) if snapshots else 0
        uow.commit()
    skipped = len(marking) - written
    report = EquityReport(at, written, skipped, tuple(sorted(prices)))
    logger.info("equity snapshot at %s: written=%d skipped=%d", at.isoformat(), written, skipped)
    return report


def mark_to_market(
    marking: Iterable[tuple[Portfolio, EquitySnapshot | None]], prices: Mapping[str, Decimal], at: datetime
) -> list[EquitySnapshot]:
    """Each portfolio's next snapshot at `at` (by agent id), given its latest one; none for a portfolio already
    marked at or after `at`: never rewrite history, running peak and drawdown depend on the order of snapshots."""
    snapshots: list[EquitySnapshot] = []
    for portfolio, previous in sorted(marking, key=lambda entry: entry[0].agent_id):
        if previous is not None and previous.at >= at:
            continue
        equity = portfolio.equity(prices)
        snapshots.append(
            previous.next(at=at, equity=equity, cash=portfolio.cash)
            if previous is not None
            else EquitySnapshot.first(portfolio.agent_id, at=at, equity=equity, cash=portfolio.cash)
        )
    return snapshots
