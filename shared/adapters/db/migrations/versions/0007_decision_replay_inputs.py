"""Decision replay inputs: the portfolio before the decision, the model's settings, the rules and the snapshot's
window, as three nullable JSON columns of `decisions` (shared.domain.decision_inputs).

With the snapshot's hash (already stored) they are what a replay needs to rerun a decision exactly. Decisions
recorded before this migration keep NULLs: a replay refuses them and says why (their portfolio could be summed
from the trades, but not the rules and model settings they were made under).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("portfolio_before", "model_settings", "race_settings")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("decisions", sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
