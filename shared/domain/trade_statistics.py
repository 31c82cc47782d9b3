"""Closed round trips from an agent's fills: FIFO lots per symbol, fees included, exact Decimal P&L.

A buy opens a lot carrying its fee; a sale closes the oldest lots first. The buy fee follows the quantity
(a lot closed in part takes that part of its fee with it), the sale's fee is split across the lots it closes in
proportion to the quantity each supplies. A sale that closes parts of two lots makes two round trips.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.domain.model import Side
from shared.domain.money import q
from shared.domain.statistics import Fill, TradeStats

ZERO = Decimal(0)


@dataclass(slots=True)
class _Lot:
    opened_at: datetime
    quantity: Decimal  # still open
    price: Decimal
    fee: Decimal  # the part of the buy fee that belongs to the open quantity


@dataclass(frozen=True, slots=True)
class RoundTrip:
    symbol: str
    opened_at: datetime
    closed_at: datetime
    quantity: Decimal
    pnl: Decimal  # (sale price - buy price) x quantity - its share of both fees, USD

    @property
    def holding(self) -> timedelta:
        return self.closed_at - self.opened_at


def round_trips(fills: Sequence[Fill], *, agent: str = "agent") -> list[RoundTrip]:
    """Match every sale against the oldest open lots of its symbol.

    ValueError when a sale sells more than the fills bought before it (the fills are incomplete or wrong).
    """
    open_lots: dict[str, deque[_Lot]] = {}
    held: dict[str, Decimal] = {}
    trips: list[RoundTrip] = []
    for index, fill in enumerate(fills):
        lots = open_lots.setdefault(fill.symbol, deque())
        holding = held.get(fill.symbol, ZERO)
        if fill.side is Side.BUY:
            lots.append(_Lot(fill.at, fill.quantity, fill.price, fill.fee))
            held[fill.symbol] = holding + fill.quantity
            continue
        if fill.quantity > holding:
            raise ValueError(
                f"{agent}: fill {index} sells {fill.quantity} {fill.symbol} at {fill.at.isoformat()} "
                f"but only {holding} was bought before it"
            )
        held[fill.symbol] = holding - fill.quantity
        remaining = fill.quantity
        sell_fee_left = fill.fee
        while remaining > 0:
            lot = lots[0]
            taken = min(remaining, lot.quantity)
            # The last piece takes what is left of each fee, so the pieces add up to the fees exactly.
            buy_fee = lot.fee if taken == lot.quantity else lot.fee * taken / lot.quantity
            sell_fee = sell_fee_left if taken == remaining else fill.fee * taken / fill.quantity
            sell_fee_left -= sell_fee
            pnl = (fill.price - lot.price) * taken - buy_fee - sell_fee
            trips.append(RoundTrip(fill.symbol, lot.opened_at, fill.at, taken, pnl))
            lot.quantity -= taken
            lot.fee -= buy_fee
            remaining -= taken
            if lot.quantity == 0:
                lots.popleft()
    return trips


def trade_stats(fills: Sequence[Fill], *, agent: str = "agent") -> TradeStats:
    """Counts, win rate, profit factor, average/biggest win and loss, average holding of the closed round trips."""
    trips = round_trips(fills, agent=agent)
    if not trips:
        return TradeStats(0, None, None, None, None, None, None, None)
    wins = [t.pnl for t in trips if t.pnl > 0]
    losses = [t.pnl for t in trips if t.pnl < 0]
    gross_win = sum(wins, ZERO)
    gross_loss = sum(losses, ZERO)
    holding = sum((t.holding for t in trips), timedelta(0)) / len(trips)
    return TradeStats(
        round_trips=len(trips),
        win_rate=len(wins) / len(trips),
        profit_factor=float(gross_win / -gross_loss) if losses else None,
        average_win=q(gross_win / len(wins)) if wins else None,
        average_loss=q(gross_loss / len(losses)) if losses else None,
        biggest_win=q(max(wins)) if wins else None,
        biggest_loss=q(min(losses)) if losses else None,
        average_holding=holding,
    )
