"""The database schema as SQLAlchemy 2 typed declarative models (rows, not domain objects).

Repositories map these rows to the domain dataclasses; nothing outside `shared.adapters.db` imports them.
Money and quantities are `ScaledDecimal` (exact BIGINT), times are `UTCDateTime`. String columns that are
indexed have explicit lengths because Azure SQL cannot index NVARCHAR(max). Human text is Unicode so Azure SQL
stores it as NVARCHAR. The naming convention keeps constraint names identical on every dialect, so later
migrations can refer to them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Unicode,
    UnicodeText,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.adapters.db.types import ScaledDecimal, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SYMBOL = String(20)
INTERVAL = String(8)
SHA256 = String(64)
# Candle volume can be a 24h USD volume (CoinGecko: ~1e11 for BTC), beyond the 9.2e10 that scale 8 allows.
VOLUME_SCALE = 4


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        Decimal: ScaledDecimal(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


class AssetRow(Base):
    __tablename__ = "assets"

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    name: Mapped[str] = mapped_column(Unicode(100))
    coingecko_id: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean)


class CandleRow(Base):
    """Keyed on (symbol, interval, open_time): the upsert key and the index every window query seeks on."""

    __tablename__ = "candles"

    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    interval: Mapped[str] = mapped_column(INTERVAL, primary_key=True)
    open_time: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[Decimal]
    high: Mapped[Decimal]
    low: Mapped[Decimal]
    close: Mapped[Decimal]
    volume: Mapped[Decimal] = mapped_column(ScaledDecimal(VOLUME_SCALE))
    # Set by every upsert that writes the row, from the "candles" sequence: readers that cache candles ask
    # for the rows above the highest revision they have seen (see adapters/db/candles.py).
    revision: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)


class SequenceRow(Base):
    """Named counters whose increments are serialized by the row's write lock (portable, unlike SEQUENCE
    objects on SQLite)."""

    __tablename__ = "sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Unicode(100), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(Unicode(200))
    strategy: Mapped[str] = mapped_column(UnicodeText)
    params: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean)
    inactive_reason: Mapped[str | None] = mapped_column(UnicodeText)
    created_at: Mapped[datetime]


class PortfolioRow(Base):
    __tablename__ = "portfolios"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, autoincrement=False)
    cash: Mapped[Decimal]
    fees_paid: Mapped[Decimal]
    trade_count: Mapped[int]
    updated_at: Mapped[datetime]
    # Bumped by every write of the portfolio or its positions: writers replace what they read with
    # `UPDATE ... WHERE version = <read>` and know from the row count whether someone wrote in between.
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Running LLM usage totals, added to by every decision write that reports usage (never by the portfolio's
    # own writes, so they do not bump the version): what the leaderboard shows without summing decisions.
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    llm_cost_usd: Mapped[Decimal] = mapped_column(server_default="0")


class PositionRow(Base):
    __tablename__ = "positions"

    agent_id: Mapped[int] = mapped_column(ForeignKey("portfolios.agent_id"), primary_key=True, autoincrement=False)
    symbol: Mapped[str] = mapped_column(SYMBOL, primary_key=True)
    quantity: Mapped[Decimal]
    avg_cost: Mapped[Decimal]


class DecisionRow(Base):
    """One agent's answer in one cycle with its full audit trail. The unique (agent_id, cycle_time) makes a
    rerun of a cycle a no-op and is also the index behind newest-first paging."""

    __tablename__ = "decisions"
    # cycle_time alone: what a cycle reads back (who decided, the cycle's totals) without scanning all rows.
    __table_args__ = (UniqueConstraint("agent_id", "cycle_time"), Index("ix_decisions_cycle_time", "cycle_time"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    cycle_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    reasoning: Mapped[str] = mapped_column(UnicodeText)
    confidence: Mapped[float | None] = mapped_column(Float)
    hold_reason: Mapped[str | None] = mapped_column(UnicodeText)
    orders: Mapped[list[dict[str, Any]]]
    rejections: Mapped[list[dict[str, Any]]]
    trade_count: Mapped[int]  # kept on the row so a page of decisions needs no count per decision
    snapshot_sha256: Mapped[str] = mapped_column(SHA256)
    data_staleness_seconds: Mapped[float | None] = mapped_column(Float)
    prompt: Mapped[str | None] = mapped_column(UnicodeText)
    raw_response: Mapped[str | None] = mapped_column(UnicodeText)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    cost_usd: Mapped[Decimal | None]
    decided_at: Mapped[datetime]
    # What the decision was made from besides the snapshot (shared.domain.decision_inputs), exact JSON, so it
    # can be replayed: the portfolio before it, the model's settings, the rules and the snapshot's window.
    # NULL on decisions recorded before migration 0007 (a replay refuses those and says why).
    portfolio_before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    race_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_agent_id_cycle_time_id", "agent_id", "cycle_time", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    cycle_time: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(SYMBOL)
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    notional: Mapped[Decimal]
    fee: Mapped[Decimal]


class EquitySnapshotRow(Base):
    """Keyed on (agent_id, at). The covering index holds every column the leaderboard reads, so it is an
    index-only scan even on a heap table (PostgreSQL). `ordinal` (1, 2, 3, ... per agent, in time order) is
    unique per agent: a thinned equity curve selects every k-th ordinal on its index instead of numbering the
    whole range with ROW_NUMBER() on each request."""

    __tablename__ = "equity_snapshots"
    __table_args__ = (
        Index(
            "ix_equity_snapshots_series",
            "agent_id",
            "at",
            "equity",
            "cash",
            "peak_equity",
            "max_drawdown",
        ),
        Index("ix_equity_snapshots_agent_id_ordinal", "agent_id", "ordinal", unique=True),
    )

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    equity: Mapped[Decimal]
    cash: Mapped[Decimal]
    peak_equity: Mapped[Decimal]
    max_drawdown: Mapped[Decimal]
    ordinal: Mapped[int] = mapped_column(BigInteger)


class CycleRow(Base):
    __tablename__ = "cycles"

    cycle_time: Mapped[datetime] = mapped_column(primary_key=True)
    snapshot_sha256: Mapped[str] = mapped_column(SHA256)
    agents: Mapped[int]
    decisions: Mapped[int]
    trades: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]


class AgentStatisticsRow(Base):
    """One agent's latest statistics (shared.services.race_statistics), replaced for every agent at once when a
    cycle's equity marks land: `computed_for` is the newest mark covered, `payload` the figures as JSON."""

    __tablename__ = "agent_statistics"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True, autoincrement=False)
    computed_for: Mapped[datetime]
    computed_at: Mapped[datetime]
    observations: Mapped[int]
    payload: Mapped[dict[str, Any]]


metadata = Base.metadata
