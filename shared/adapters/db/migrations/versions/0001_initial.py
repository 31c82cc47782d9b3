"""Initial schema: assets, candles, agents, portfolios, positions, decisions, trades, equity, cycles.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Column types are spelled out here (BIGINT for scaled decimals, DATETIME2 on Azure SQL for times) rather than
imported from the models, so this migration keeps meaning the same schema when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCALED = sa.BigInteger  # Decimal x 10^8 (volume: x 10^4), see shared/adapters/db/types.py


def utc_time() -> sa.types.TypeEngine[datetime]:
    """Naive UTC; DATETIME2 on Azure SQL (DATETIME rounds to 3.33 ms)."""
    return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")  # type: ignore[no-untyped-call]


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("name", sa.Unicode(100), nullable=False),
        sa.Column("coingecko_id", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_assets")),
    )
    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False),
        sa.Column("open_time", utc_time(), nullable=False),
        sa.Column("open", SCALED(), nullable=False),
        sa.Column("high", SCALED(), nullable=False),
        sa.Column("low", SCALED(), nullable=False),
        sa.Column("close", SCALED(), nullable=False),
        sa.Column("volume", SCALED(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "interval", "open_time", name=op.f("pk_candles")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Unicode(100), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.Unicode(200), nullable=False),
        sa.Column("strategy", sa.UnicodeText(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("inactive_reason", sa.UnicodeText(), nullable=True),
        sa.Column("created_at", utc_time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    op.create_table(
        "portfolios",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cash", SCALED(), nullable=False),
        sa.Column("fees_paid", SCALED(), nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", utc_time(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_portfolios_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_portfolios")),
    )
    op.create_table(
        "positions",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("quantity", SCALED(), nullable=False),
        sa.Column("avg_cost", SCALED(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["portfolios.agent_id"], name=op.f("fk_positions_agent_id_portfolios")),
        sa.PrimaryKeyConstraint("agent_id", "symbol", name=op.f("pk_positions")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("cycle_time", utc_time(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasoning", sa.UnicodeText(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("hold_reason", sa.UnicodeText(), nullable=True),
        sa.Column("orders", sa.JSON(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(64), nullable=False),
        sa.Column("data_staleness_seconds", sa.Float(), nullable=True),
        sa.Column("prompt", sa.UnicodeText(), nullable=True),
        sa.Column("raw_response", sa.UnicodeText(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", SCALED(), nullable=True),
        sa.Column("decided_at", utc_time(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_decisions_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("agent_id", "cycle_time", name=op.f("uq_decisions_agent_id_cycle_time")),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("cycle_time", utc_time(), nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", SCALED(), nullable=False),
        sa.Column("price", SCALED(), nullable=False),
        sa.Column("notional", SCALED(), nullable=False),
        sa.Column("fee", SCALED(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_trades_agent_id_agents")),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name=op.f("fk_trades_decision_id_decisions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
    )
    op.create_index("ix_trades_agent_id_cycle_time_id", "trades", ["agent_id", "cycle_time", "id"])
    op.create_index(op.f("ix_trades_decision_id"), "trades", ["decision_id"])
    op.create_table(
        "equity_snapshots",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", utc_time(), nullable=False),
        sa.Column("equity", SCALED(), nullable=False),
        sa.Column("cash", SCALED(), nullable=False),
        sa.Column("peak_equity", SCALED(), nullable=False),
        sa.Column("max_drawdown", SCALED(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_equity_snapshots_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", "at", name=op.f("pk_equity_snapshots")),
    )
    op.create_index(
        "ix_equity_snapshots_series",
        "equity_snapshots",
        ["agent_id", "at", "equity", "cash", "peak_equity", "max_drawdown"],
    )
    op.create_table(
        "cycles",
        sa.Column("cycle_time", utc_time(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(64), nullable=False),
        sa.Column("agents", sa.Integer(), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("started_at", utc_time(), nullable=False),
        sa.Column("finished_at", utc_time(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_time", name=op.f("pk_cycles")),
    )


def downgrade() -> None:
    op.drop_table("cycles")
    op.drop_index("ix_equity_snapshots_series", table_name="equity_snapshots")
    op.drop_table("equity_snapshots")
    op.drop_index(op.f("ix_trades_decision_id"), table_name="trades")
    op.drop_index("ix_trades_agent_id_cycle_time_id", table_name="trades")
    op.drop_table("trades")
    op.drop_table("decisions")
    op.drop_table("positions")
    op.drop_table("portfolios")
    op.drop_table("agents")
    op.drop_table("candles")
    op.drop_table("assets")
