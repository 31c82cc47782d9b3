"""The read side behind the HTTP API (`RaceQueries`): bounded, indexed, a fixed number of queries per call."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, func, literal, select, union_all

from shared.adapters.db.agent_repository import agent_from_row
from shared.adapters.db.candles import CANDLES, row_to_candle
from shared.adapters.db.tables import (
    AGENTS,
    ASSETS,
    CYCLES,
    DECISIONS,
    EQUITY,
    PORTFOLIOS,
    POSITIONS,
    TRADES,
    is_latest_equity_of,
)
from shared.adapters.db.types import require_aware
from shared.domain.model import INTERVAL_SECONDS, Candle, interval_delta
from shared.domain.money import ZERO, q
from shared.services.ports import AgentSummary, DecisionRow, EquityPoint, Page, PriceRow, RaceStatus, TradeRow

HUNDRED = Decimal(100)


class SqlAlchemyRaceQueries:
    """Read-only queries for the dashboard; each call uses its own short connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._equity_curves = EquityCurveCache()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(select(literal(1))).scalar_one()

    # ------------------------------------------------------------ agents and the leaderboard

    def agent_summaries(self, *, starting_cash: Decimal) -> list[AgentSummary]:
        with self.engine.connect() as connection:
            return _summaries(connection, None, starting_cash)

    def agent_summary(self, agent_id: int, *, starting_cash: Decimal) -> AgentSummary | None:
        with self.engine.connect() as connection:
            found = _summaries(connection, agent_id, starting_cash)
        return found[0] if found else None

    def equity_series(
        self, agent_id: int, *, start: datetime | None, end: datetime | None, max_points: int
    ) -> list[EquityPoint]:
        """At most `max_points` points, oldest first, always including the first and the newest.

        An agent's snapshots are numbered 1, 2, 3, ... in time order (`ordinal`): two index seeks find the
        numbers at the ends of the range, and the thinned curve is every k-th number counted back from the
        newest, plus the first, read on the (agent_id, ordinal) index. Only the kept rows cross into Python,
        and no request numbers a year of rows."""
        if max_points < 1:
            return []
        with self.engine.connect() as connection:
            first_ordinal, last_ordinal = _ordinal_range(connection, agent_id, start, end)
            if first_ordinal is None or last_ordinal is None or first_ordinal > last_ordinal:
                return []
            # Snapshots are insert-only and numbered in time order: the same ends mean the same rows.
            key = (agent_id, start, end, max_points, first_ordinal, last_ordinal)
            cached = self._equity_curves.get(key)
            if cached is not None:
                return cached
            count = last_ordinal - first_ordinal + 1
            in_range = (
                EQUITY.c.agent_id == agent_id,
                EQUITY.c.ordinal >= first_ordinal,
                EQUITY.c.ordinal <= last_ordinal,
            )
            statement = select(EQUITY.c.at, EQUITY.c.equity, EQUITY.c.cash, EQUITY.c.peak_equity).where(*in_range)
            if count > max_points:
                statement = statement.where(_thinned(first_ordinal, last_ordinal, max_points))
            rows = connection.execute(statement.order_by(EQUITY.c.ordinal)).all()
        points = [EquityPoint(row.at, row.equity, row.cash, _drawdown_pct(row.equity, row.peak_equity)) for row in rows]
        self._equity_curves.put(key, points)
        return points

    # ------------------------------------------------------------ trades and decisions, newest first

    def trades(self, agent_id: int, *, limit: int, offset: int) -> Page[TradeRow]:
        statement = (
            select(TRADES)
            .where(TRADES.c.agent_id == agent_id)
            .order_by(TRADES.c.cycle_time.desc(), TRADES.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        total = select(func.count()).select_from(TRADES).where(TRADES.c.agent_id == agent_id)
        with self.engine.connect() as connection:
            count = connection.execute(total).scalar_one()
            items = [
                TradeRow(r.id, r.agent_id, r.cycle_time, r.symbol, r.side, r.quantity, r.price, r.notional, r.fee)
                for r in connection.execute(statement)
            ]
        return Page(items, count, limit, offset)

    def decisions(self, agent_id: int, *, limit: int, offset: int) -> Page[DecisionRow]:
        columns = [c for c in DECISIONS.c if c.name not in ("prompt", "raw_response")]  # large; not listed
        statement = (
            select(*columns)
            .where(DECISIONS.c.agent_id == agent_id)
            .order_by(DECISIONS.c.cycle_time.desc())
            .limit(limit)
            .offset(offset)
        )
        total = select(func.count()).select_from(DECISIONS).where(DECISIONS.c.agent_id == agent_id)
        with self.engine.connect() as connection:
            count = connection.execute(total).scalar_one()
            items = [_decision_row(r) for r in connection.execute(statement)]
        return Page(items, count, limit, offset)

    # ------------------------------------------------------------ market data

    def latest_prices(self) -> list[PriceRow]:
        # Per asset and interval, the newest candle; the freshest close across intervals wins, on a tie the
        # finer interval.
        per_interval = [_latest_candle_per_asset(interval) for interval in INTERVAL_SECONDS]
        with self.engine.connect() as connection:
            rows = connection.execute(union_all(*per_interval)).all()
        best: dict[str, tuple[datetime, int, Decimal]] = {}
        for row in rows:
            if row.open_time is None:
                continue  # no candle of this interval for this asset
            seconds = INTERVAL_SECONDS[row.interval]
            closed = require_aware(row.open_time) + interval_delta(row.interval)
            current = best.get(row.symbol)
            if current is None or (closed, -seconds) > (current[0], -current[1]):
                best[row.symbol] = (closed, seconds, row.close)
        return [PriceRow(symbol, price, as_of) for symbol, (as_of, _, price) in sorted(best.items())]

    def candles(
        self, symbol: str, interval: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> list[Candle]:
        """Ascending. With `start`: the first `limit` candles from it; without: the latest `limit` up to `end`."""
        statement = select(CANDLES).where(CANDLES.c.symbol == symbol, CANDLES.c.interval == interval)
        if start is not None:
            statement = statement.where(CANDLES.c.open_time >= require_aware(start))
        if end is not None:
            statement = statement.where(CANDLES.c.open_time <= require_aware(end))
        newest_first = start is None
        order = CANDLES.c.open_time.desc() if newest_first else CANDLES.c.open_time.asc()
        with self.engine.connect() as connection:
            candles = [row_to_candle(r) for r in connection.execute(statement.order_by(order).limit(limit))]
        if newest_first:
            candles.reverse()
        return candles

    def known_symbols(self) -> set[str]:
        with self.engine.connect() as connection:
            return set(connection.execute(select(ASSETS.c.symbol)).scalars())

    def race_status(self) -> RaceStatus:
        # Count, min and max of the primary key: one pass over the cycles index (8,760 rows a year).
        statement = select(func.count(), func.min(CYCLES.c.cycle_time), func.max(CYCLES.c.cycle_time))
        # The newest mark: one seek per agent on (agent_id, at), never a scan of every snapshot. Marks land
        # after their cycle (the equity timer runs minutes later), so a dashboard needs them in the version.
        latest_per_agent = select(func.max(EQUITY.c.at)).where(EQUITY.c.agent_id == AGENTS.c.id).scalar_subquery()
        with self.engine.connect() as connection:
            cycles, first, last = connection.execute(statement).one()
            finished = None
            if last is not None:
                finished = connection.execute(
                    select(CYCLES.c.finished_at).where(CYCLES.c.cycle_time == last)
                ).scalar_one_or_none()
            marked = connection.execute(select(func.max(latest_per_agent)).select_from(AGENTS)).scalar_one_or_none()
        return RaceStatus(
            cycles=int(cycles),
            first_cycle=_utc(first),
            last_cycle=_utc(last),
            last_finished_at=_utc(finished),
            last_mark_at=_utc(marked),
        )


def _utc(value: datetime | None) -> datetime | None:
    # min()/max() keep the column's UTC type on every backend; a bare driver value would be naive UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _thinned(first: int, last: int, max_points: int) -> ColumnElement[bool]:
    """The ordinals a curve of at most `max_points` keeps from [first, last]: the newest, the first, and every
    k-th counted back from the newest in between."""
    if max_points == 1:
        return EQUITY.c.ordinal == last
    if max_points == 2:
        return EQUITY.c.ordinal.in_((first, last))
    stride = -(-(last - first) // (max_points - 2))  # ceil: at most max_points - 1 kept, plus the first
    return (EQUITY.c.ordinal == first) | ((last - EQUITY.c.ordinal) % stride == 0)


def _ordinal_range(
    connection: Connection, agent_id: int, start: datetime | None, end: datetime | None
) -> tuple[int | None, int | None]:
    """The numbers of the agent's first and last snapshots within [start, end]: one seek each on the
    (agent_id, at) key, in one statement."""

    def edge(*, newest: bool) -> Any:
        statement = select(EQUITY.c.ordinal).where(EQUITY.c.agent_id == agent_id)
        if start is not None:
            statement = statement.where(EQUITY.c.at >= require_aware(start))
        if end is not None:
            statement = statement.where(EQUITY.c.at <= require_aware(end))
        order = EQUITY.c.at.desc() if newest else EQUITY.c.at.asc()
        return statement.order_by(order).limit(1).scalar_subquery()

    first, last = connection.execute(select(edge(newest=False), edge(newest=True))).one()
    return first, last


def _summaries(connection: Connection, agent_id: int | None, starting_cash: Decimal) -> list[AgentSummary]:
    statement = (
        select(
            AGENTS,
            PORTFOLIOS.c.cash,
            PORTFOLIOS.c.fees_paid,
            PORTFOLIOS.c.trade_count,
            PORTFOLIOS.c.prompt_tokens.label("total_prompt_tokens"),
            PORTFOLIOS.c.completion_tokens.label("total_completion_tokens"),
            PORTFOLIOS.c.llm_cost_usd,
            EQUITY.c.at.label("equity_at"),
            EQUITY.c.equity,
            EQUITY.c.max_drawdown,
        )
        .outerjoin(PORTFOLIOS, PORTFOLIOS.c.agent_id == AGENTS.c.id)
        .outerjoin(EQUITY, is_latest_equity_of(AGENTS.c.id, AGENTS))
        .order_by(AGENTS.c.id)
    )
    positions_query = select(POSITIONS.c.agent_id, POSITIONS.c.symbol, POSITIONS.c.quantity).order_by(
        POSITIONS.c.agent_id, POSITIONS.c.symbol
    )
    if agent_id is not None:
        statement = statement.where(AGENTS.c.id == agent_id)
        positions_query = positions_query.where(POSITIONS.c.agent_id == agent_id)
    rows = connection.execute(statement).all()
    positions: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for p in connection.execute(positions_query):
        positions[p.agent_id][p.symbol] = p.quantity
    return [_summary(row, positions.get(row.id, {}), starting_cash) for row in rows]


def _summary(row: Any, positions: dict[str, Decimal], starting_cash: Decimal) -> AgentSummary:
    has_portfolio = row.cash is not None
    equity: Decimal | None = row.equity
    return AgentSummary(
        agent=agent_from_row(row),
        cash=row.cash if has_portfolio else starting_cash,
        equity=equity,
        equity_at=row.equity_at,
        return_pct=q((equity / starting_cash - 1) * HUNDRED) if equity is not None else None,
        max_drawdown_pct=q(row.max_drawdown * HUNDRED) if row.max_drawdown is not None else None,
        trades=row.trade_count if has_portfolio else 0,
        fees_paid=row.fees_paid if has_portfolio else ZERO,
        positions=positions,
        prompt_tokens=row.total_prompt_tokens if has_portfolio else 0,
        completion_tokens=row.total_completion_tokens if has_portfolio else 0,
        llm_cost_usd=row.llm_cost_usd if has_portfolio else ZERO,
    )


def _drawdown_pct(equity: Decimal, peak: Decimal) -> Decimal:
    return q((peak - equity) / peak * HUNDRED) if peak > 0 else ZERO


def _decision_row(r: Any) -> DecisionRow:
    return DecisionRow(
        id=r.id,
        agent_id=r.agent_id,
        cycle_time=r.cycle_time,
        status=r.status,
        reasoning=r.reasoning,
        confidence=r.confidence,
        hold_reason=r.hold_reason,
        orders=list(r.orders or []),
        rejections=list(r.rejections or []),
        trades=r.trade_count,
        snapshot_sha256=r.snapshot_sha256,
        data_staleness_seconds=r.data_staleness_seconds,
        latency_ms=r.latency_ms,
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens,
        cost_usd=r.cost_usd,
        decided_at=r.decided_at,
    )


def _latest_candle_per_asset(interval: str) -> Select[Any]:
    # Driven by the small assets table: scalar subqueries leave the planner no way to scan all candles, and
    # each is a backward seek of one row on the (symbol, interval, open_time) key.
    def newest(column: Any) -> Any:
        return (
            select(column)
            .where(CANDLES.c.symbol == ASSETS.c.symbol, CANDLES.c.interval == interval)
            .order_by(CANDLES.c.open_time.desc())
            .limit(1)
            .correlate(ASSETS)
            .scalar_subquery()
        )

    return select(
        ASSETS.c.symbol,
        literal(interval).label("interval"),
        newest(CANDLES.c.open_time).label("open_time"),
        newest(CANDLES.c.close).label("close"),
    )


CachedCurve = tuple[tuple[datetime, Decimal, Decimal, Decimal], ...]


class EquityCurveCache:
    """Thinned equity curves, keyed by the request and by the numbers of the first and last snapshots in its
    range.

    Equity snapshots are insert-only and numbered in time order (the equity job never rewrites history), so
    the same numbers mean the same rows: a dashboard polling a curve costs two index seeks instead of reading
    the curve again. A new snapshot changes the key, so a stale curve is never served.

    Curves are held as plain tuples of datetimes and Decimals, which the garbage collector stops tracking: a
    full cache of dataclass points would add ~125,000 objects to every full collection (measured: a full
    collection went from ~40 to ~80 ms, and the API's p99 with it).
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[Any, ...], CachedCurve] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()  # FastAPI runs sync routes on a thread pool

    def get(self, key: tuple[Any, ...]) -> list[EquityPoint] | None:
        with self._lock:
            curve = self._entries.get(key)
            if curve is None:
                return None
            self._entries.move_to_end(key)
        return [EquityPoint(*values) for values in curve]

    def put(self, key: tuple[Any, ...], points: Sequence[EquityPoint]) -> None:
        curve = tuple((p.at, p.equity, p.cash, p.drawdown_pct) for p in points)
        with self._lock:
            self._entries[key] = curve
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
