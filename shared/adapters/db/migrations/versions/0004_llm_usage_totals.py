"""Running LLM usage totals per agent (prompt and completion tokens, estimated cost) on its portfolio row,
added by the decision write in the same transaction: the API and the leaderboard read them without summing
a year of decisions.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("prompt_tokens", "completion_tokens", "llm_cost_usd")


def upgrade() -> None:
    # llm_cost_usd is a ScaledDecimal (USD x 10^8 in a BIGINT), like every amount of money.
    for name in COLUMNS:
        op.add_column("portfolios", sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
    # Decisions recorded before this migration count too.
    decisions = sa.table(
        "decisions",
        sa.column("agent_id", sa.Integer()),
        sa.column("prompt_tokens", sa.Integer()),
        sa.column("completion_tokens", sa.Integer()),
        sa.column("cost_usd", sa.BigInteger()),
    )
    portfolios = sa.table(
        "portfolios", sa.column("agent_id", sa.Integer()), *(sa.column(name, sa.BigInteger()) for name in COLUMNS)
    )

    def total(column: sa.ColumnElement[int]) -> sa.ScalarSelect[int]:
        return (
            # BIGINT before summing: SQL Server's SUM of an INT column is an INT, and would overflow.
            sa.select(sa.func.coalesce(sa.func.sum(sa.cast(column, sa.BigInteger())), 0))
            .where(decisions.c.agent_id == portfolios.c.agent_id)
            .scalar_subquery()
        )

    op.execute(
        portfolios.update().values(
            prompt_tokens=total(decisions.c.prompt_tokens),
            completion_tokens=total(decisions.c.completion_tokens),
            llm_cost_usd=total(decisions.c.cost_usd),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("portfolios") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
