"""Portfolio versions: every write of a portfolio bumps it, so a cycle can replace a portfolio it read earlier
with one conditional UPDATE (optimistic concurrency) instead of reading it again inside the transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("portfolios", sa.Column("version", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("portfolios") as batch:
        batch.drop_column("version")
