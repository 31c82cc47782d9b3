"""Candle revisions (every upsert numbers the rows it writes, so a cache of candles can catch up exactly) and
an index on decisions.cycle_time (a cycle reads its own decisions back without scanning all of them).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sequences",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sequences")),
    )
    op.add_column("candles", sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False))
    op.create_index(op.f("ix_candles_revision"), "candles", ["revision"])
    op.create_index("ix_decisions_cycle_time", "decisions", ["cycle_time"])


def downgrade() -> None:
    op.drop_index("ix_decisions_cycle_time", table_name="decisions")
    op.drop_index(op.f("ix_candles_revision"), table_name="candles")
    with op.batch_alter_table("candles") as batch:
        batch.drop_column("revision")
    op.drop_table("sequences")
