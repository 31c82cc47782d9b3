"""Equity snapshot ordinals: each agent's snapshots numbered 1, 2, 3, ... in time order, unique per agent.

A curve thinned to at most N points keeps every k-th snapshot; with the number stored, the API selects those
rows on the (agent_id, ordinal) index instead of numbering a whole year with ROW_NUMBER() on every request.
Snapshots written before this migration are numbered here, in one UPDATE ... FROM over a ROW_NUMBER() window
(SQLite 3.33+, PostgreSQL and SQL Server all run it).

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_equity_snapshots_agent_id_ordinal"
AMOUNTS = ("equity", "cash", "peak_equity", "max_drawdown")  # scaled decimals (BIGINT), as in 0001


def _utc_time() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")  # type: ignore[no-untyped-call]


def _table_with_nullable_ordinal() -> sa.Table:
    """The table between the two steps, spelled out: SQLite's batch copy then needs no reflection, so the
    offline script (`make sql-script`) can be generated for SQLite too."""
    metadata = sa.MetaData()
    sa.Table("agents", metadata, sa.Column("id", sa.Integer(), primary_key=True))
    return sa.Table(
        "equity_snapshots",
        metadata,
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", _utc_time(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in AMOUNTS),
        sa.Column("ordinal", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_equity_snapshots_agent_id_agents"),
        sa.PrimaryKeyConstraint("agent_id", "at", name="pk_equity_snapshots"),
        sa.Index("ix_equity_snapshots_series", "agent_id", "at", "equity", "cash", "peak_equity", "max_drawdown"),
    )


def upgrade() -> None:
    op.add_column("equity_snapshots", sa.Column("ordinal", sa.BigInteger(), nullable=True))
    snapshots = sa.table(
        "equity_snapshots",
        sa.column("agent_id", sa.Integer()),
        sa.column("at", sa.DateTime()),
        sa.column("ordinal", sa.BigInteger()),
    )
    numbered = (
        sa.select(
            snapshots.c.agent_id,
            snapshots.c.at,
            sa.func.row_number().over(partition_by=snapshots.c.agent_id, order_by=snapshots.c.at).label("number"),
        )
    ).subquery("numbered")
    op.execute(
        snapshots.update()
        .values(ordinal=numbered.c.number)
        .where(snapshots.c.agent_id == numbered.c.agent_id, snapshots.c.at == numbered.c.at)
    )
    with op.batch_alter_table("equity_snapshots", copy_from=_table_with_nullable_ordinal()) as batch:
        batch.alter_column("ordinal", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(INDEX, "equity_snapshots", ["agent_id", "ordinal"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="equity_snapshots")
    with op.batch_alter_table("equity_snapshots") as batch:
        batch.drop_column("ordinal")
