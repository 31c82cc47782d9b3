"""Agent statistics: each agent's latest risk-adjusted figures, computed once per cycle and read by the API.

One row per agent, replaced as a whole (all agents in one transaction) each time a cycle's equity marks land:
`computed_for` is the latest mark the figures cover, `computed_at` the wall-clock time they were computed.
`payload` holds the full statistics as JSON (decimals as strings), so the leaderboard and `/stats` read
twenty small rows instead of recomputing anything over a year of marks.

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_time() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime().with_variant(mssql.DATETIME2(), "mssql")  # type: ignore[no-untyped-call]


def upgrade() -> None:
    op.create_table(
        "agent_statistics",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_for", _utc_time(), nullable=False),
        sa.Column("computed_at", _utc_time(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_agent_statistics_agent_id_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_statistics")),
    )


def downgrade() -> None:
    op.drop_table("agent_statistics")
